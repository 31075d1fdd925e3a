"""The pure core: everything that decides what a RayCluster's children and status should be.

Nothing in this package reads a clock, the environment, the network or a random source.
"""
