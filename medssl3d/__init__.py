"""medssl3d: self-supervised pretraining and few-label fine-tuning of 2D and 3D medical image encoders.

Built on MONAI. Sub-packages are organised by concept: ``data``, ``transforms``, ``nets``, ``losses``,
``engines``, ``metrics``, ``optimizers``, ``reports``.
"""

from __future__ import annotations

__version__ = "0.1.0"
