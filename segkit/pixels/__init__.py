"""Full-resolution pixel work: exact resizes, the cutout, mask clean-up and alpha matting, with their numba kernels."""
