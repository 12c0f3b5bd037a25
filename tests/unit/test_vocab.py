import pytest
import torch

from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality
from tmt.vocab import EOS, Vocabulary


def test_paper_union_size_and_contiguous_ranges():
    vocab = Vocabulary.paper()
    assert vocab.size == 7 + 200 + 8192 + 30522
    ranges = [vocab.id_range(m) for m in MODALITIES]
    assert ranges[0].start == vocab.num_specials
    for a, b in zip(ranges, ranges[1:]):
        assert a.stop == b.start
    assert ranges[-1].stop == vocab.size
    tags = {vocab.tag(m) for m in MODALITIES}
    assert len(tags) == 3 and max(tags) < vocab.num_specials


def test_local_unified_round_trip_and_types(tiny_vocab):
    for m in MODALITIES:
        local = torch.arange(tiny_vocab.size_of(m))
        unified = tiny_vocab.to_unified(m, local)
        assert torch.equal(tiny_vocab.to_local(m, unified), local)
        types = tiny_vocab.type_ids()[unified]
        assert types.unique().numel() == 1
    assert tiny_vocab.type_ids()[tiny_vocab.id_range(Modality.TEXT).start] == 0


def test_out_of_range_ids_are_a_clear_error(tiny_vocab):
    with pytest.raises(TmtError, match="speech ids must lie in"):
        tiny_vocab.to_unified(Modality.SPEECH, torch.tensor([20]))


def test_allowed_mask_is_range_plus_eos(tiny_vocab):
    mask = tiny_vocab.allowed_mask(Modality.IMAGE)
    assert mask.sum() == 30 + 1 and mask[EOS]


def test_json_round_trip_and_bad_file(tiny_vocab, tmp_path):
    tiny_vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == tiny_vocab
    (tmp_path / "bad.json").write_text('{"speech_size": 3}')
    with pytest.raises(TmtError, match="invalid vocabulary file"):
        Vocabulary.load(tmp_path / "bad.json")


def test_from_sizes_validates():
    with pytest.raises(TmtError, match="missing for: image"):
        Vocabulary.from_sizes({"speech": 2, "text": 3})
    with pytest.raises(TmtError, match="unknown modality"):
        Vocabulary.from_sizes({"speech": 2, "text": 3, "video": 4})
