"""Full-resolution pixel work: exact resizes, the cutout, mask clean-up and alpha matting, with their numba
kernels, run on threads that each keep to one core (``cores``)."""
