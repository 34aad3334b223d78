"""Detect: YuNet (or BlazeFace) over whole images, BlazeFace's keypoints found again for each face,
and alignment of each face onto the training crops' landmark template."""
