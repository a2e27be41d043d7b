"""What is measured: FID, FD-DINOv2, KID, precision/recall, IS and PPL, of networks or image folders."""
