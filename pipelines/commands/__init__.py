"""The feature-platform commands beyond `run`, one module each; registered in pipelines/cli.py."""
