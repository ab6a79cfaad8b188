"""Running segkit beyond one process: bulk jobs on a Ray cluster (``ray_job``)."""
