"""The model registry on the CPU at 64 px: shapes, heads, freezing, and where weights come from."""

import socket
import urllib.error
from datetime import datetime, timezone
from itertools import chain

import pytest
import torch
import torchvision
from torch import nn
from typer.testing import CliRunner

from infra.cli import TRANSFER_MODELS, app
from services.trainer import weights
from services.trainer.models import (
    MODEL_BUILDERS,
    backbone_blocks,
    build_model,
    head_name,
    head_of,
    set_train_mode,
)
from services.trainer.weights import MissingWeightsError
from shared.schemas.jobs import JobSpec

HEAD_SHAPES = {"custom_cnn": (128, 64), "resnet50": (2048, 64), "vgg16": (512, 64), "mobilenet_v2": (1280, 256)}
TRANSFER = ["resnet50", "vgg16", "mobilenet_v2"]


def spec(model_name: str, **overrides) -> JobSpec:
    values = {"weights": "none", "feature_extraction": False, "image_size": 64, **overrides}
    return JobSpec(model_name=model_name, dataset="x", **values)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 64, 64, generator=generator), torch.tensor([0, 1, 2, 0])


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def train_one_step(model: nn.Module) -> None:
    """What the engine does per batch: set_train_mode, forward, backward, one Adam step."""
    set_train_mode(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    images, labels = batch()
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()


def changed(model: nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, tensor in model.state_dict().items() if not torch.equal(tensor, before[name])}


def names_in(model: nn.Module, module: nn.Module) -> set[str]:
    """The state-dict names of module's parameters and buffers, as model calls them."""
    ids = {id(t) for t in chain(module.parameters(), module.buffers())}
    return {name for name, t in chain(model.named_parameters(), model.named_buffers()) if id(t) in ids}


def parameter_names(model: nn.Module, module: nn.Module | None = None) -> set[str]:
    ids = {id(p) for p in (module or model).parameters()}
    return {name for name, p in model.named_parameters() if id(p) in ids}


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture
def offline(monkeypatch) -> list[str]:
    """No name resolves, as in a GPU box without network (and hermetic where there is one); the
    hosts looked up, in order."""
    looked_up = []

    def no_network(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    return looked_up


def test_the_registries_agree():
    assert set(MODEL_BUILDERS) == {"custom_cnn", *TRANSFER}
    assert set(TRANSFER_MODELS) == set(weights.IMAGENET_WEIGHTS) == set(TRANSFER)


@pytest.mark.parametrize("model_name", sorted(HEAD_SHAPES))
def test_each_model_classifies_into_the_given_classes(model_name):
    model = build_model(spec(model_name), 3)
    head = head_of(model)
    assert (head[0].in_features, head[0].out_features) == HEAD_SHAPES[model_name]
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]
    assert head[3].p == 0.5 and head[-1].out_features == 3
    assert model(batch()[0]).shape == (4, 3)
    model.eval()
    with torch.inference_mode():
        assert model(batch()[0][:1]).shape == (1, 3)


@pytest.mark.parametrize("dropout", [None, 0.0])
def test_no_dropout_leaves_the_dropout_layer_out(dropout):
    head = head_of(build_model(spec("mobilenet_v2", dropout=dropout), 3))
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


@pytest.mark.parametrize("model_name", TRANSFER)
def test_feature_extraction_trains_the_head_only(model_name):
    model = build_model(spec(model_name, feature_extraction=True), 3)
    head = head_name(model) + "."
    assert all(p.requires_grad == name.startswith(head) for name, p in model.named_parameters())
    before = snapshot(model)

    train_one_step(model)

    frozen_batchnorms = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not name.startswith(head)
    ]
    assert not any(m.training for m in frozen_batchnorms)
    assert head_of(model).training
    # Backbone parameters and BatchNorm running statistics alike are untouched.
    assert {name for name in changed(model, before) if not name.startswith(head)} == set()
    assert parameter_names(model, head_of(model)) <= changed(model, before)


@pytest.mark.parametrize("model_name", TRANSFER)
def test_trainable_layers_unfreezes_the_last_blocks(model_name):
    model = build_model(spec(model_name, feature_extraction=True, trainable_layers=1), 3)
    blocks = backbone_blocks(model)
    last, earlier = blocks[-1], blocks[-2]
    assert all(p.requires_grad for p in last.parameters())
    assert not any(p.requires_grad for block in blocks[:-1] for p in block.parameters())
    before = snapshot(model)

    train_one_step(model)

    moved = changed(model, before)
    assert parameter_names(model, last) <= moved
    assert moved <= names_in(model, last) | names_in(model, head_of(model))
    assert not names_in(model, earlier) & moved


def test_trainable_layers_split_the_backbones_as_documented():
    resnet = build_model(spec("resnet50"), 3)
    assert backbone_blocks(resnet)[-2:] == [resnet.layer3, resnet.layer4]
    vgg = build_model(spec("vgg16"), 3)
    assert [len(block) for block in backbone_blocks(vgg)] == [5, 5, 7, 7, 7]
    assert all(isinstance(block[-1], nn.MaxPool2d) for block in backbone_blocks(vgg))
    mobilenet = build_model(spec("mobilenet_v2"), 3)
    assert len(backbone_blocks(mobilenet)) == len(mobilenet.features) == 19
    many = build_model(spec("mobilenet_v2", feature_extraction=True, trainable_layers=20), 3)
    assert all(p.requires_grad for p in many.parameters())


@pytest.mark.parametrize("model_name", sorted(HEAD_SHAPES))
def test_without_feature_extraction_everything_trains(model_name):
    model = build_model(spec(model_name), 3)
    before = snapshot(model)

    train_one_step(model)

    assert all(m.training for m in model.modules())
    assert parameter_names(model) <= changed(model, before)


def test_an_unknown_model_names_the_choices():
    unknown = spec("custom_cnn").model_copy(update={"model_name": "alexnet"})
    with pytest.raises(ValueError, match=r"unknown model 'alexnet'; choose one of \['custom_cnn', 'mobilenet_v2'"):
        build_model(unknown, 3)


def test_custom_cnn_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="custom_cnn has no ImageNet weights"):
        build_model(spec("custom_cnn", weights="imagenet"), 3)


@pytest.mark.parametrize("skip_probe", [False, True], ids=["probed", "torchvision-download"])
@pytest.mark.parametrize("model_name", TRANSFER)
def test_missing_imagenet_weights_say_how_to_provide_them(model_name, skip_probe, torch_home, offline, monkeypatch):
    if skip_probe:  # torchvision's own download fails the same way
        monkeypatch.setattr(weights, "probe", lambda *args: None)
    with pytest.raises(MissingWeightsError) as raised:
        build_model(spec(model_name, weights="imagenet", feature_extraction=True), 3)
    assert offline == ["download.pytorch.org"]  # fails at once: one look-up, nothing retried or waited for
    message = str(raised.value)
    expected = torch_home / "hub" / "checkpoints" / weights.file_name(model_name)
    assert expected.name in message and weights.IMAGENET_WEIGHTS[model_name].url in message
    assert str(torch_home) not in message  # the run's error reaches API clients: no server path
    assert f"paddy weights download {model_name}" in message and f"paddy weights import {expected.name}" in message
    assert isinstance(raised.value.__cause__, urllib.error.URLError)
    assert not expected.exists()


def test_weights_download_reports_each_model_offline(torch_home, offline):
    result = CliRunner().invoke(app, ["weights", "download", "mobilenet_v2", "vgg16"])
    assert result.exit_code == 1
    assert "mobilenet_v2-7ebf99e0.pth" in result.output and "vgg16-397923af.pth" in result.output
    assert "Traceback" not in result.output


def test_weights_download_names_the_models_it_knows(torch_home, offline):
    result = CliRunner().invoke(app, ["weights", "download", "alexnet"])
    assert result.exit_code == 1 and "choose one of ['mobilenet_v2', 'resnet50', 'vgg16']" in result.output


def test_imported_weights_load_without_network(tmp_path, torch_home, offline):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    original = torchvision.models.mobilenet_v2(weights=None).state_dict()
    fake = downloads / "mobilenet_v2-7ebf99e0.pth"  # torchvision's name, not its content
    torch.save(original, fake)

    refused = CliRunner().invoke(app, ["weights", "import", str(fake)])
    assert refused.exit_code == 1 and "--no-check-hash" in refused.output
    result = CliRunner().invoke(app, ["weights", "import", str(fake), "--no-check-hash"])
    assert result.exit_code == 0, result.output
    assert weights.cached_file("mobilenet_v2").is_file()
    assert str(weights.cached_file("mobilenet_v2")) in result.output

    model = build_model(spec("mobilenet_v2", weights="imagenet", feature_extraction=True), 3)
    assert all(
        torch.equal(tensor, original[name])
        for name, tensor in model.state_dict().items()
        if name.startswith("features.")
    )


def test_import_needs_the_model_when_the_name_is_not_torchvisions(tmp_path, torch_home):
    renamed = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), renamed)

    unknown = CliRunner().invoke(app, ["weights", "import", str(renamed), "--no-check-hash"])
    assert unknown.exit_code == 1 and "--model" in unknown.output
    named = CliRunner().invoke(app, ["weights", "import", str(renamed), "--model", "mobilenet_v2", "--no-check-hash"])
    assert named.exit_code == 0, named.output
    assert (torch_home / "hub" / "checkpoints" / "mobilenet_v2-7ebf99e0.pth").is_file()


def test_import_refuses_weights_of_another_model(tmp_path, torch_home):
    wrong = tmp_path / "mobilenet_v2-7ebf99e0.pth"
    torch.save(build_model(spec("custom_cnn"), 3).state_dict(), wrong)
    result = CliRunner().invoke(app, ["weights", "import", str(wrong), "--no-check-hash"])
    assert result.exit_code == 1 and "not a torchvision mobilenet_v2 state dict" in result.output
    assert not weights.cached_file("mobilenet_v2").exists()


def test_a_missing_state_dict_path_is_named(tmp_path):
    with pytest.raises(ValueError, match="weights 'nowhere.pt' not found in the weights root") as raised:
        build_model(spec("custom_cnn", weights="nowhere.pt"), 3, weights_root=tmp_path)
    assert str(tmp_path) not in str(raised.value)


@pytest.fixture
def weights_root(tmp_path):
    """A weights root next to a real state dict outside it, which must never be loaded."""
    root, outside = tmp_path / "weights", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    torch.save(build_model(spec("custom_cnn"), 3).state_dict(), outside / "model.pt")
    (root / "link.pt").symlink_to(outside / "model.pt")
    (root / "folder").symlink_to(outside, target_is_directory=True)
    (root / "passwd").symlink_to("/etc/passwd")
    return root


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        ("/etc/passwd", "outside the weights root"),
        ("/no/such/file.pt", "outside the weights root"),  # not "not found": nothing outside is probed
        ("{outside}/model.pt", "outside the weights root"),
        ("../outside/model.pt", "must not contain '..'"),
        ("link.pt", "outside the weights root"),
        ("folder/model.pt", "outside the weights root"),
        ("passwd", "outside the weights root"),
        ("nowhere.pt", "not found in the weights root"),
        (".", "not a file in the weights root"),
        ("model\x00.pt", "control characters"),
    ],
)
def test_the_trainer_refuses_weights_outside_the_weights_root(weights_root, choice, words):
    given = choice.format(outside=weights_root.parent / "outside")
    job = spec("custom_cnn").model_copy(update={"weights": given})  # as if the API had let it through
    with pytest.raises(ValueError, match=words) as raised:
        build_model(job, 3, weights_root=weights_root)
    told = str(raised.value).replace(given, "<given>")
    assert str(weights_root) not in told and "outside/model.pt" not in told


def test_without_a_weights_root_no_file_is_loaded(weights_root):
    with pytest.raises(ValueError, match="no weights root"):
        build_model(spec("custom_cnn", weights=str(weights_root.parent / "outside" / "model.pt")), 3)


def test_a_state_dict_path_restores_a_whole_model(tmp_path):
    trained = build_model(spec("custom_cnn"), 3)
    train_one_step(trained)
    path = tmp_path / "model.pt"
    torch.save({"model": trained.state_dict(), "start_time": datetime.now(timezone.utc)}, path)

    restored = build_model(spec("custom_cnn", weights="model.pt"), 3, weights_root=tmp_path)

    assert all(torch.equal(t, trained.state_dict()[name]) for name, t in restored.state_dict().items())


def test_a_state_dict_of_another_class_count_loads_as_backbone(tmp_path):
    trained = build_model(spec("resnet50"), 5)
    path = tmp_path / "five.pt"
    torch.save(trained.state_dict(), path)

    model = build_model(spec("resnet50", weights=str(path), feature_extraction=True), 3, weights_root=tmp_path)

    fc = head_name(model) + "."
    assert all(
        torch.equal(t, trained.state_dict()[name]) for name, t in model.state_dict().items() if not name.startswith(fc)
    )
    assert head_of(model)[-1].out_features == 3


def test_a_torchvision_state_dict_loads_as_backbone(tmp_path):
    original = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save(original, path)
    model = build_model(spec("resnet50", weights=str(path)), 3, weights_root=tmp_path)
    assert torch.equal(model.layer4[2].conv3.weight, original["layer4.2.conv3.weight"])


def test_a_state_dict_that_does_not_fit_is_refused(tmp_path):
    path = tmp_path / "cnn.pt"
    torch.save(build_model(spec("custom_cnn"), 3).state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit .*missing keys"):
        build_model(spec("mobilenet_v2", weights="cnn.pt"), 3, weights_root=tmp_path)
    (tmp_path / "junk.pt").write_text("not a tensor file")
    with pytest.raises(ValueError, match="weights 'junk.pt' is not a readable state dict") as raised:
        build_model(spec("mobilenet_v2", weights="junk.pt"), 3, weights_root=tmp_path)
    assert str(tmp_path) not in str(raised.value)


@pytest.mark.parametrize(("blocks", "width"), [(2, 8), (3, 32), (4, 32)])
def test_the_custom_cnn_has_the_blocks_and_width_asked_for(blocks, width):
    spec = JobSpec(model_name="custom_cnn", dataset="x", cnn_blocks=blocks, cnn_width=width)
    model = build_model(spec, 3)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convolutions] == [width * 2**i for i in range(blocks)]
    assert model(torch.zeros(2, 3, 32, 64)).shape == (2, 3)  # any height and width
