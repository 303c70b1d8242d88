"""Video restoration with faces tracked and their landmarks smoothed over time."""
