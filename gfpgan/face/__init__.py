"""Face detection, landmarks, alignment to the FFHQ template and paste-back, shared by inference and data scripts."""
