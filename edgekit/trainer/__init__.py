"""Training: recipes (edge architectures), the user's own model file, devices, the fit loop."""
