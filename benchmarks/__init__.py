"""Benchmarks of the deployed local stack (issue 8): deploy speed and the cost of the auth layer."""
