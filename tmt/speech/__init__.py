"""Speech ⇄ discrete units: tokenizer (features → k-means → dedup) and unit vocoders.

``SpeechCodec.load()`` gives the shipped default (``tmt/assets/codecs/speech``).
"""

from tmt.speech.audio import SAMPLE_RATE, load_audio, save_audio
from tmt.speech.codec import SpeechCodec
from tmt.speech.features import HubertFeatures, MfccConfig, MfccFeatures
from tmt.speech.hifigan import CodeHiFiGAN, CodeHiFiGANConfig, CodeHiFiGANVocoder
from tmt.speech.interop import load_fairseq_code_hifigan
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder

__all__ = [
    "SAMPLE_RATE",
    "CodeHiFiGAN",
    "CodeHiFiGANConfig",
    "CodeHiFiGANVocoder",
    "HubertFeatures",
    "KMeansQuantizer",
    "MfccConfig",
    "MfccFeatures",
    "SpeechCodec",
    "SpeechTokenizer",
    "UnitMelConfig",
    "UnitMelModel",
    "UnitMelVocoder",
    "load_audio",
    "load_fairseq_code_hifigan",
    "save_audio",
]
