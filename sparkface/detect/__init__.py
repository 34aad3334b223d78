"""Detect: BlazeFace over images and their tiles, and alignment of each face onto the training
crops' landmark template."""
