"""Tests of corpus preparation."""
