"""nn.data's text: the shipped names, the character tokenizer and the next-character data set."""

from importlib import resources
from pathlib import Path

import pytest

from nn.data import BOUNDARY, IGNORE, CharTokenizer, load_names, names_dataset, names_tokenizer


def test_load_names_gives_the_32033_lower_case_names_in_the_files_order():
    names = load_names()
    assert len(names) == 32033
    assert names[:3] == ["emma", "olivia", "ava"]
    assert set("".join(names)) == set("abcdefghijklmnopqrstuvwxyz")
    assert max(map(len, names)) == 15 and min(map(len, names)) == 2


def test_the_names_ship_with_their_licence_notice_as_package_data():
    licence = resources.files("nn").joinpath("datasets/names.LICENSE").read_text()
    assert "MIT License" in licence and "Andrej Karpathy" in licence
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    package_data = pyproject.partition("[tool.setuptools.package-data]")[2].partition("\n[")[0]
    assert '"nn.datasets" = ["names.txt", "names.LICENSE"]' in package_data


def test_the_tokenizer_puts_the_boundary_first_then_the_characters_sorted():
    tokenizer = names_tokenizer()
    assert tokenizer.vocab == [BOUNDARY, *"abcdefghijklmnopqrstuvwxyz"]
    assert tokenizer.boundary == 0
    assert tokenizer.encode("emma") == [5, 13, 13, 1]
    assert tokenizer.decode([0, 5, 13, 13, 1, 0]) == ".emma."


def test_the_tokenizer_refuses_what_it_cannot_encode_or_decode():
    tokenizer = CharTokenizer("abc")
    with pytest.raises(ValueError, match="cannot encode 'abd': 'd' is not in the vocabulary"):
        tokenizer.encode("abd")
    with pytest.raises(ValueError, match=r"cannot decode 4: expected a token id 0\.\.3"):
        tokenizer.decode([1, 4])
    with pytest.raises(ValueError, match="may not include the boundary token '.'"):
        CharTokenizer("a.b")


def test_names_dataset_predicts_each_next_character_and_pads_with_ignored_targets():
    X, Y = names_dataset(8, names=["emma", "bob"])
    assert X == [[0, 5, 13, 13, 1, 0, 0, 0], [0, 2, 15, 2, 0, 0, 0, 0]]
    assert Y == [[5, 13, 13, 1, 0, IGNORE, IGNORE, IGNORE], [2, 15, 2, 0] + [IGNORE] * 4]


def test_a_name_longer_than_the_block_loses_its_end():
    X, Y = names_dataset(3, names=["olivia"])
    assert X == [[0, 15, 12]] and Y == [[15, 12, 9]]


def test_names_dataset_of_the_whole_file_fits_block_16_with_every_end_kept():
    X, Y = names_dataset(16)
    assert len(X) == len(Y) == 32033
    assert all(len(x) == 16 for x in X)
    # The longest names (15 letters) still end on the boundary: nothing was cut.
    assert all(0 in y for y in Y)


def test_names_dataset_refuses_a_bad_block_size():
    with pytest.raises(ValueError, match="names_dataset expected block_size to be an int >= 1"):
        names_dataset(0)
