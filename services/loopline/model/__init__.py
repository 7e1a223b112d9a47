"""Pure PyTorch: preprocessing, networks, training, evaluation, artifacts. No serving imports."""
