"""Dataset readers and feature builders, one module per format; the feature cache."""
