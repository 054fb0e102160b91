"""Locust load tests of the Conduit API and a staging-like stack on one machine to run them against."""
