"""Replications, sweeps and batches, on a local process pool or a Dask cluster."""
