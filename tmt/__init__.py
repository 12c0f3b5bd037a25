"""tmt: tri-modal translation between speech, images and text as discrete-token languages."""

from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, MODALITIES, Modality

__version__ = "0.1.0"

__all__ = ["DIRECTIONS", "MODALITIES", "Modality", "TmtError", "__version__"]
