"""Networks: the UNet of Taleb et al. 2020, an encoder registry (UNet, DenseNet-121, ResNet), a classifier
on any encoder, projection heads for joint-embedding methods, encoder weight transfer, and the architecture
recorded in checkpoints (read back for fine-tuning, evaluation, inference and TorchScript export)."""

from __future__ import annotations

from .architecture import (
    is_torchscript,
    load_inference_network,
    network_from_checkpoint,
    network_from_config,
    read_network_config,
    resolve_architecture,
)
from .bundle_architecture import encoder_from_architecture, evaluation_checkpoint
from .classifier import CLASSIFIER_HEADS, Classifier, check_input_size, classification_head
from .encoders import (
    ENCODERS,
    DenseNetEncoder,
    ResNetEncoder,
    check_encoder,
    create_encoder,
    encoder_from_config,
    global_pool,
)
from .encoder_head import ANY_VIEWS, EncoderWithHead
from .heads import L2Normalize, ProjectionHead, sicova_expander, simclr_projection_head, triplet_projection
from .pretext import (
    CPCHead,
    CPCNet,
    ExemplarNet,
    JigsawNet,
    JointEmbeddingNet,
    RelativePatchLocationNet,
    RotationNet,
    TripletEmbeddingNet,
    ViewConcatHead,
)
from .unet import (
    UNet,
    UNetDecoder,
    UNetEncoder,
    check_patch_size,
    load_encoder_weights,
    save_encoder,
    with_pretrained_encoder,
)

__all__ = [
    "is_torchscript",
    "load_inference_network",
    "network_from_checkpoint",
    "network_from_config",
    "read_network_config",
    "resolve_architecture",
    "encoder_from_architecture",
    "evaluation_checkpoint",
    "CLASSIFIER_HEADS",
    "Classifier",
    "check_input_size",
    "classification_head",
    "ENCODERS",
    "DenseNetEncoder",
    "ResNetEncoder",
    "create_encoder",
    "encoder_from_config",
    "check_encoder",
    "global_pool",
    "ANY_VIEWS",
    "EncoderWithHead",
    "CPCHead",
    "CPCNet",
    "ExemplarNet",
    "JigsawNet",
    "JointEmbeddingNet",
    "RelativePatchLocationNet",
    "RotationNet",
    "TripletEmbeddingNet",
    "ViewConcatHead",
    "L2Normalize",
    "ProjectionHead",
    "sicova_expander",
    "simclr_projection_head",
    "triplet_projection",
    "UNet",
    "UNetDecoder",
    "UNetEncoder",
    "check_patch_size",
    "load_encoder_weights",
    "save_encoder",
    "with_pretrained_encoder",
]
