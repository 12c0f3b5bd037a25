"""Offline text-to-speech for the tmt-shapes corpus: espeak-ng (ctypes) and flite (subprocess).

espeak-ng comes bundled with the ``espeakng-loader`` wheel (library + data), so no system
package is needed; it is driven through ctypes in synchronous mode. flite is Debian's
``flite`` binary (voices kal16, awb, rms, slt). Every synthesizer returns float32 audio
resampled to 16 kHz mono, so the corpus has one format whatever the voice.

A voice is named ``engine:name`` (``espeak:en-us+f3``, ``flite:slt``). Rate and pitch
are given relative to the voice's default (1.0 = default) so that both engines share one
interface.
"""

from __future__ import annotations

import ctypes
import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from tmt.errors import TmtError

SAMPLE_RATE = 16_000
"""Sample rate of every waveform in the corpus (Hz)."""
PEAK = 0.9
"""Every utterance is scaled so that its largest absolute sample is PEAK."""

ESPEAK_ACCENTS: tuple[str, ...] = (
    "en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-us-nyc",
)
"""espeak-ng's English accents (each combines with any :data:`ESPEAK_VARIANTS` entry)."""

ESPEAK_VARIANTS: tuple[str, ...] = (
    "", "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene",
    "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen",
    "Reed", "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "adam", "anika",
    "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "croak", "david",
    "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "grandma", "grandpa", "gustave",
    "ian", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt", "klatt2", "klatt3",
    "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "marcelo", "max", "michel", "miguel", "mike2", "norbert", "pablo", "paul", "pedro",
    "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis",
    "victor", "whisperf", "zac",
)
"""espeak-ng voice variants (speaker characters: formants, breathiness, pitch, flutter) that the
speech side trains on. Left out: the robot, demon and whisper effects, which are not voices."""

TRAIN_FLITE_VOICES: tuple[str, ...] = ("kal16", "kal")
"""flite voices the speech side trains on: both are the diphone voice of one speaker (kal16 at
16 kHz, kal at 8 kHz); kal16 is also the output voice."""

UNSEEN_VOICES: tuple[str, ...] = ("flite:awb", "flite:rms", "flite:slt")
"""Voices that nothing in tmt trains on or chooses settings with: the unseen-voice evaluation
speaks with them (flite's statistical voices built from three CMU ARCTIC speakers' recordings;
``awb_time`` is awb again and is not used anywhere)."""


@dataclass(frozen=True, kw_only=True)
class VoiceDraw:
    """One random input voice: a voice name and its parameters (see :func:`synthesize`)."""

    voice: str
    rate: float
    pitch: float
    pitch_range: float = 1.0
    word_gap: int = 0


def draw_training_voice(rng: np.random.Generator) -> VoiceDraw:
    """A random voice of the training pool: 4 in 5 espeak-ng (any English accent x variant,
    random rate, pitch, intonation range and word gap), else flite's kal16 or kal (random
    rate and pitch)."""
    rate = float(rng.uniform(0.8, 1.3))
    if rng.random() < 0.8:
        accent = ESPEAK_ACCENTS[int(rng.integers(len(ESPEAK_ACCENTS)))]
        variant = ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]
        return VoiceDraw(voice=f"espeak:{accent}+{variant}" if variant else f"espeak:{accent}",
                         rate=rate, pitch=float(rng.uniform(0.5, 1.6)),
                         pitch_range=float(rng.uniform(0.2, 1.8)),
                         word_gap=int(rng.integers(0, 4)))
    name = TRAIN_FLITE_VOICES[int(rng.integers(len(TRAIN_FLITE_VOICES)))]
    return VoiceDraw(voice=f"flite:{name}", rate=rate, pitch=float(rng.uniform(0.75, 1.35)))


# espeak-ng API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_ESPEAK_VOLUME = 2
_ESPEAK_RANGE = 4
_ESPEAK_WORDGAP = 7
_ESPEAK_DEFAULT_RANGE = 50  # 0..100
_ESPEAK_DEFAULT_RATE = 175  # words per minute
_ESPEAK_DEFAULT_PITCH = 50  # 0..100
_RAND_SEED = 1

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True, kw_only=True)
class Utterance:
    """One synthesized waveform."""

    wave: np.ndarray
    """float32 samples in [-1, 1], 16 kHz mono."""
    voice: str
    """``engine:name`` of the voice that spoke it."""
    text: str
    """The text spoken."""


class _Espeak:
    """Process-wide espeak-ng handle (the library keeps global state)."""

    _instance: _Espeak | None = None

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.rate <= 0:
            raise TmtError("espeak-ng failed to initialize (espeakng-loader data missing?)")
        self._chunks: list[np.ndarray] = []

        def collect(wav: ctypes.Array, n: int, _events: int) -> int:
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0  # 0 = continue synthesis

        self._callback = _SynthCallback(collect)  # keep a reference: ctypes would free it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

    @classmethod
    def get(cls) -> _Espeak:
        if cls._instance is None:
            cls._instance = _Espeak()
        return cls._instance

    def _synth_here(self, text: str, voice: str, rate: float, pitch: float,
                    pitch_range: float = 1.0, word_gap: int = 0) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TmtError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_ESPEAK_RATE, round(_ESPEAK_DEFAULT_RATE * rate), 0)
        self.lib.espeak_SetParameter(_ESPEAK_PITCH, round(_ESPEAK_DEFAULT_PITCH * pitch), 0)
        self.lib.espeak_SetParameter(_ESPEAK_RANGE, round(_ESPEAK_DEFAULT_RANGE * pitch_range), 0)
        self.lib.espeak_SetParameter(_ESPEAK_WORDGAP, int(word_gap), 0)  # units of 10 ms
        # Some voices clip at full volume (100); 60 leaves headroom before normalization.
        self.lib.espeak_SetParameter(_ESPEAK_VOLUME, 60, 0)
        self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        self._chunks = []
        buf = text.encode()
        self.lib.espeak_Synth(
            buf, len(buf) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0

    def synth(self, text: str, voice: str, rate: float, pitch: float,
              pitch_range: float = 1.0, word_gap: int = 0) -> np.ndarray:
        """Synthesize in a forked child so that the result never depends on earlier calls.

        espeak-ng keeps static synthesis state (pitch flutter phase, filters) that neither
        ``espeak_Terminate`` nor its random seed resets, so two identical requests in one
        process differ. A child forked from this never-used, freshly initialized state
        always starts from the same point: byte-reproducible output at ~20 ms per call.
        """
        if not hasattr(os, "fork"):  # not reproducible, but still works off Linux/macOS
            return self._synth_here(text, voice, rate, pitch, pitch_range, word_gap)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesize, send float32 bytes, exit without cleanup
            status = 1
            try:
                os.close(read_fd)
                wave = self._synth_here(text, voice, rate, pitch, pitch_range, word_gap)
                view = memoryview(wave.tobytes())
                while view:
                    view = view[os.write(write_fd, view) :]
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 1 << 16):
            chunks.append(chunk)
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise TmtError(f"espeak-ng failed to speak with voice {voice!r}")
        return np.frombuffer(b"".join(chunks), dtype=np.float32)


def _flite(text: str, voice: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    exe = shutil.which("flite")
    if exe is None:
        raise TmtError("flite is not installed (Debian: apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [exe, "-voice", voice, "-t", text, "-o", str(out)]
        if rate != 1.0:
            # duration_stretch > 1 slows speech down, so it is the inverse of the rate.
            cmd += ["--setf", f"duration_stretch={1.0 / rate:.4f}"]
        if pitch != 1.0:
            # Mean F0 of flite's US voices sits near 100-170 Hz: scale a 130 Hz target.
            # kal16, awb and slt follow it; rms ignores it (identical output).
            cmd += ["--setf", f"int_f0_target_mean={130.0 * pitch:.1f}"]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise TmtError(f"flite failed for voice {voice!r}: {proc.stderr.decode().strip()}")
        data = out.read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        sr = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0, sr


def synthesize(text: str, voice: str, *, rate: float = 1.0, pitch: float = 1.0,
               pitch_range: float = 1.0, word_gap: int = 0) -> Utterance:
    """Speak ``text`` with ``voice`` (``espeak:NAME`` or ``flite:NAME``) at 16 kHz mono.

    ``rate`` and ``pitch`` are relative to the voice's default (1.0 = unchanged);
    ``pitch_range`` (intonation range, relative) and ``word_gap`` (pause between words, in
    10 ms) are espeak-ng's only: flite ignores them.
    """
    engine, _, name = voice.partition(":")
    if engine == "espeak":
        esp = _Espeak.get()
        samples, sr = esp.synth(text, name, rate, pitch, pitch_range, word_gap), esp.rate
    elif engine == "flite":
        samples, sr = _flite(text, name, rate, pitch)
    else:
        raise TmtError(f"unknown voice {voice!r}: expected espeak:NAME or flite:NAME")
    if sr != SAMPLE_RATE:
        samples = soxr.resample(samples, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    # One loudness for every voice: peak-normalize to PEAK.
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0:
        samples = samples * np.float32(PEAK / peak)
    return Utterance(wave=np.clip(samples, -1.0, 1.0), voice=voice, text=text)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float samples as 16-bit PCM mono WAV (the stdlib writer: byte-reproducible)."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a corpus WAV as float32 samples in [-1, 1] and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise TmtError(f"{path}: expected 16-bit mono WAV")
        sr = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, sr
