"""What is trained: networks, losses, augmentation, datasets and the training loop."""
