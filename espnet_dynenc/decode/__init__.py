"""Decoding: batched greedy CTC for every subnet size in one pass over the data."""
