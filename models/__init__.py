"""Trained segmentation models of tomopipe (data only: safetensors weights and model cards).

Installed as ``tomopipe.models``; load them with :func:`tomopipe.segment.load_model`.
"""
