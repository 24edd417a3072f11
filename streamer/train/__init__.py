"""Training recipes (keyword spotting, sensor classification); these import torch, the daemon never does."""
