"""What is measured: FID, KID, precision/recall, IS and PPL."""
