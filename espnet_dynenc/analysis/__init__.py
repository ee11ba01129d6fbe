"""Measuring models: parameters and FLOPs per subnet, representation similarity (SVCCA), timing."""
