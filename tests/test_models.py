import shutil

import pytest
import torch
from torch import nn

from vitfer.preprocess import Preprocess
from vitfer.labels import EMOTIONS_7
from vitfer.models.checkpoint import load_model, describe, save_model
from vitfer.models.factory import available_models, build_model
from vitfer.errors import ModelError, WeightImportError
from vitfer.models.freeze import gradual_unfreeze_mode
from tests.conftest import SHARED


def trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name,size", [("hybrid_vit_tiny", 64), ("cnn3", 48), ("resnet18", 48), ("vgg16", 48),
                                       ("mobilenetv2", 48), ("vit_tiny_patch16_224", 112),
                                       ("deit_tiny_patch16_224", 64), ("cct_tiny", 48), ("cct_tiny", 64),
                                       ("deit_tiny_distilled_patch16_224", 64)])
def test_every_family_builds_and_runs(name, size):
    model = build_model(name, 7, img_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)


def test_vit_position_embedding_follows_img_size():
    model = build_model("vit_tiny_patch16_224", 8, img_size=112)
    assert model.backbone.pos_embed.shape[1] == 1 + (112 // 16) ** 2


def test_cct_pools_its_convolutional_tokens_by_attention():
    model = build_model("cct_tiny", 7, img_size=48).eval()
    cct = model.backbone
    assert cct.pos_embed.shape[1] == (48 // 4) ** 2  # two stride-2 pools: 12 x 12 tokens, no [CLS] token
    features = cct.forward_features(torch.randn(2, 3, 48, 48))
    weights = cct.attention_pool(features).softmax(dim=1)
    assert torch.allclose(cct.forward_head(features, pre_logits=True), (weights * features).sum(dim=1))


def test_a_distilled_deit_averages_its_two_token_heads():
    model = build_model("deit_tiny_distilled_patch16_224", 7, img_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = model.backbone.vit.forward_features(x)
        cls, dist = model.head.head(tokens[:, 0]), model.head.head_dist(tokens[:, 1])
        assert torch.allclose(model(x), (cls + dist) / 2, atol=1e-6)
        assert not torch.allclose(cls, dist)
    frozen = build_model("deit_tiny_distilled_patch16_224", 7, img_size=32, freeze="blocks:12")
    assert trainable(frozen) <= {"head.head.weight", "head.head.bias", "head.head_dist.weight",
                                 "head.head_dist.bias"} | {n for n, _ in frozen.named_parameters()
                                                           if n.startswith("backbone.vit.norm")
                                                           or "token" in n or "pos_embed" in n}
    with pytest.raises(ModelError, match="linear head per token"):
        build_model("deit_tiny_distilled_patch16_224", 7, img_size=32, head="mlp")


def test_mlp_head_shape():
    head = build_model("cnn3", 7, head="mlp", head_dropout=0.2).head
    layers = [type(m) for m in head]
    assert layers == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert head[1].out_features == 256 and head[4].out_features == 7 and head[0].p == 0.2


def test_freeze_modes():
    head_only = build_model("vit_tiny_patch16_224", 7, img_size=64, freeze="head")
    assert trainable(head_only) == {"head.weight", "head.bias"}
    partial = build_model("vit_tiny_patch16_224", 7, img_size=64, freeze="blocks:4")
    names = trainable(partial)
    assert not any(n.startswith(("backbone.patch_embed", "backbone.blocks.3.", "backbone.pos_embed")) for n in names)
    assert any(n.startswith("backbone.blocks.4.") for n in names) and "head.weight" in names
    full = build_model("vit_tiny_patch16_224", 7, img_size=64, freeze="full")
    assert trainable(full) == {n for n, _ in full.named_parameters()}
    with pytest.raises(ValueError, match="only 12 blocks"):
        build_model("vit_tiny_patch16_224", 7, img_size=64, freeze="blocks:13")
    with pytest.raises(ValueError, match="unknown freeze"):
        build_model("cnn3", 7, freeze="some")


def test_gradual_unfreezing_schedule():
    modes = [gradual_unfreeze_mode(epoch, total_blocks=3, every=2) for epoch in range(9)]
    assert modes == ["head", "head", "blocks:2", "blocks:2", "blocks:1", "blocks:1", "none", "none", "none"]


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match="vit_tiny_patch16_224"):
        build_model("vit_tiny_patch16_22")
    assert "hybrid_vit_tiny" in available_models() and "deit_small_patch16_224" in available_models()


def test_offline_weights_from_a_saved_checkpoint(tmp_path, tiny_checkpoint):
    model = build_model("cnn3", 7, pretrained=tiny_checkpoint)
    saved = torch.load(tiny_checkpoint, weights_only=False)["state_dict"]
    assert torch.equal(model.state_dict()["backbone.features.0.weight"], saved["backbone.features.0.weight"])
    bare = tmp_path / "backbone.pth"
    torch.save(build_model("cnn3", 7).backbone.state_dict(), bare)
    assert torch.equal(build_model("cnn3", 7, pretrained=bare).backbone.features[0].weight,
                       torch.load(bare)["features.0.weight"])


def test_weights_that_cannot_be_had_are_errors(tmp_path):
    with pytest.raises(WeightImportError, match="nope.pt: no such file, and not a name vitfer can download"):
        build_model("cnn3", 7, pretrained=tmp_path / "nope.pt")
    with pytest.raises(WeightImportError, match="no weights to download"):
        build_model("cnn3", 7, pretrained=True)
    other = tmp_path / "other.pt"
    torch.save(build_model("resnet18", 7).state_dict(), other)
    with pytest.raises(WeightImportError, match="no tensor"):
        build_model("cnn3", 7, pretrained=other)


@pytest.mark.parametrize("name", ["hf:tiny", "hf-mae:tiny"])
def test_hugging_face_encoders_run_at_any_size_freeze_and_load_offline(name, tmp_path):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = build_model(name, 7, img_size=48).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 48, 48)).shape == (2, 7)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)  # position embeddings interpolated
    partial = build_model(name, 7, img_size=48, freeze="blocks:1").backbone
    grads = lambda module: {p.requires_grad for p in module.parameters()}  # noqa: E731
    assert grads(partial.encoder.embeddings) == grads(partial.blocks[0]) == {False}
    assert grads(partial.blocks[1]) == grads(partial.encoder.layernorm) == {True}
    folder = tmp_path / "hf-model"
    model.backbone.encoder.save_pretrained(folder)  # what users download from the hub, saved locally
    reloaded = build_model(f"{name.split(':')[0]}:{folder}", 7, img_size=48, pretrained=True)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(reloaded.backbone.state_dict()[key], value), key
    description = describe(reloaded, Preprocess(img_size=48, in_channels=3), EMOTIONS_7)
    checkpoint = save_model(tmp_path / "m.pt", reloaded, description)
    shutil.rmtree(folder)  # a vitfer checkpoint carries the encoder's config: no hub, no folder
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(load_model(checkpoint).model(x), reloaded.eval()(x), atol=1e-5)


TFLITE = SHARED / "weights" / "mobilenet_v2_1.0_224_quant.tflite"


@pytest.mark.skipif(not TFLITE.is_file(), reason="../shared/weights is absent: no MobileNetV2 .tflite")
def test_tflite_mobilenet_recognises_a_real_photo():
    skimage_data = pytest.importorskip("skimage.data")
    import cv2

    from vitfer.models.tflite_import import mobilenetv2_from_tflite

    labels = (SHARED / "weights" / "imagenet_labels.txt").read_text().splitlines()[1:]
    model = mobilenetv2_from_tflite(TFLITE).eval()
    image = cv2.resize(skimage_data.coffee(), (224, 224))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        top = model(x).argmax().item()
    assert labels[top] == "espresso"
    hybrid = build_model("hybrid_vit_tiny", 7, pretrained=TFLITE)
    assert torch.equal(hybrid.backbone.stem[0].weight, model.conv_stem.weight)
    hybrid.train()
    stem_bns = [m for m in hybrid.backbone.stem.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert stem_bns and not any(m.training for m in stem_bns)  # folded TFLite statistics are kept
    assert hybrid.backbone.blocks.training
    with torch.no_grad():  # so train mode computes what eval mode computes in the pretrained stem
        probe = torch.randn(2, 3, 64, 64)
        assert torch.allclose(hybrid.backbone.stem(probe), hybrid.eval().backbone.stem(probe))
    fresh = build_model("hybrid_vit_tiny", 7, pretrained=TFLITE)  # no .train() call: frozen from the start
    assert not any(m.training for m in fresh.backbone.stem.modules() if isinstance(m, torch.nn.BatchNorm2d))
    scratch = build_model("hybrid_vit_tiny", 7).train()
    assert all(m.training for m in scratch.backbone.stem.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.skipif(not TFLITE.is_file(), reason="../shared/weights is absent: no MobileNetV2 .tflite")
def test_tflite_mobilenet_cnn_keeps_its_folded_batch_norm_in_training():
    model = build_model("mobilenetv2", 7, pretrained=TFLITE).train()
    probe = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        blocks_train = model.backbone.blocks(probe[:, :1].repeat(1, 32, 1, 1))
        blocks_eval = model.eval().backbone.blocks(probe[:, :1].repeat(1, 32, 1, 1))
    assert torch.allclose(blocks_train, blocks_eval)  # batch statistics do not replace the folded ones
    # the stem keeps its ImageNet conv (run at stride 1 for 48-px faces) and its folded batch norm
    from vitfer.models.tflite_import import mobilenetv2_from_tflite

    assert model.backbone.conv_stem.stride == (1, 1)
    assert torch.equal(model.backbone.conv_stem.weight, mobilenetv2_from_tflite(TFLITE).conv_stem.weight)
    assert not isinstance(model.backbone.bn1, torch.nn.BatchNorm2d)  # frozen
    reloaded = build_model("mobilenetv2", 7)
    reloaded.load_state_dict(model.state_dict())  # checkpoints load into a freshly built model


class _Payload:
    """Pickles as a call that writes a marker file: what a hostile .pt does on an unsafe torch.load."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_model_file_that_would_run_code_is_refused(tmp_path):
    import subprocess
    import sys

    from vitfer.models.checkpoint import load_model
    from vitfer.errors import ModelError

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"vitfer": {"format": 1}, "state_dict": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(ModelError, match="refusing to load .*evil.pt"):
        load_model(evil)
    from vitfer.models.factory import build_model, load_pretrained
    from vitfer.errors import WeightImportError

    with pytest.raises(WeightImportError, match="refusing to load"):
        load_pretrained(build_model("cnn3", 7), evil)
    result = subprocess.run([sys.executable, "-m", "vitfer.cli", "predict", "example", "--model", str(evil)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "refusing to load" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_weights_from_another_input_size_keep_a_resampled_position_embedding(tmp_path):
    small = build_model("vit_tiny_patch16_224", 7, img_size=64)  # 4 x 4 patches
    torch.save(small.state_dict(), tmp_path / "small.pt")
    large = build_model("vit_tiny_patch16_224", 7, img_size=112, pretrained=tmp_path / "small.pt")  # 7 x 7
    loaded, source = large.backbone.pos_embed.detach(), small.backbone.pos_embed.detach()
    assert loaded.shape == (1, 1 + 49, 192)
    assert torch.equal(loaded[:, 0], source[:, 0])  # the class token's entry as it was
    assert torch.equal(large.backbone.blocks[0].attn.qkv.weight, small.backbone.blocks[0].attn.qkv.weight)
    from timm.layers import resample_abs_pos_embed
    assert torch.allclose(loaded, resample_abs_pos_embed(source, new_size=[7, 7], num_prefix_tokens=1))


def test_vitfer_models_are_timm_models_with_their_own_configs(tmp_path):
    import timm
    from timm.data import resolve_data_config

    from vitfer.models.checkpoint import describe, save_model
    from vitfer.preprocess import Preprocess

    hybrid = timm.create_model("vitfer_hybrid_vit_tiny", num_classes=7)
    config = resolve_data_config(model=hybrid)
    assert config["input_size"] == (3, 64, 64) and config["mean"] == (0.5, 0.5, 0.5)
    assert hybrid(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    assert resolve_data_config(model=timm.create_model("vitfer_resnet18"))["mean"] != (0.5, 0.5, 0.5)  # ImageNet
    assert timm.create_model("vitfer_cnn3", in_chans=1, num_classes=3)(torch.zeros(2, 1, 48, 48)).shape == (2, 3)
    # vitfer's 48-px-stem ResNet-18 beside timm's own, which is left as it was
    resnet = timm.create_model("vitfer_resnet18")  # its ImageNet stem conv kept, no max-pool: 24-px maps into layer1
    assert resnet.conv1.kernel_size == (7, 7) and isinstance(resnet.maxpool, torch.nn.Identity)
    assert resnet.forward_features(torch.zeros(1, 3, 48, 48)).shape[-1] == 3
    assert timm.create_model("resnet18").conv1.kernel_size == (7, 7)

    # a vitfer model file as timm's pretrained file: backbone and head; a 48-px one resampled to 64 px
    trained = build_model("hybrid_vit_tiny", 7, img_size=48)
    saved = save_model(tmp_path / "m.pt", trained, describe(trained, Preprocess(img_size=48), tuple("abcdefg")))
    loaded = timm.create_model("vitfer_hybrid_vit_tiny", pretrained=True, num_classes=7,
                               pretrained_cfg_overlay=dict(file=str(saved)))
    assert loaded.pretrained_cfg["file"] == str(saved)
    assert torch.equal(loaded.head.weight, trained.head.weight)
    assert torch.equal(loaded.blocks[0].attn.qkv.weight, trained.backbone.blocks[0].attn.qkv.weight)
    from timm.layers import resample_abs_pos_embed
    assert loaded.pos_embed.shape == (1, 17, 192)  # 4 x 4 tokens + [CLS], not the random initialisation
    assert torch.allclose(loaded.pos_embed, resample_abs_pos_embed(trained.backbone.pos_embed, new_size=[4, 4],
                                                                   num_prefix_tokens=1))
    with pytest.raises(WeightImportError, match="cct_tiny has no weights to download"):
        timm.create_model("vitfer_cct_tiny", pretrained=True)


@pytest.mark.skipif(not TFLITE.is_file(), reason="../shared/weights is absent: no MobileNetV2 .tflite")
def test_timm_loads_the_tflite_stem_through_vitfers_loader():
    import timm

    from vitfer.models.tflite_import import mobilenetv2_from_tflite

    model = timm.create_model("vitfer_hybrid_vit_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(TFLITE)))
    assert torch.equal(model.stem[0].weight, mobilenetv2_from_tflite(TFLITE).conv_stem.weight)


def contract_families() -> list[str]:
    """Every family vitfer registers with timm, and one of each family of timm's and Hugging Face's it builds on."""
    from vitfer.models.zoo import own_models

    return [*sorted(own_models()), "vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "hf:tiny"]


@pytest.mark.slow
@pytest.mark.parametrize("name", contract_families())
def test_every_registered_family_keeps_the_contract(name, tmp_path):
    """Builds, trains a step, freezes, exports to ONNX (same answers), and explains: what every verb needs."""
    import numpy as np

    from vitfer.explanations.maps import explain_batch
    from vitfer.models.backend import TorchBackend
    from vitfer.models.export import export_onnx
    from vitfer.models.freeze import apply_freeze
    from vitfer.models.inputs import model_input
    from vitfer.runtime.backends import OnnxBackend

    if name.startswith("hf"):
        pytest.importorskip("transformers")
    torch.manual_seed(0)
    size = 32 if name.startswith(("vit_", "deit_", "hf")) else 48
    model = build_model(name, 7, img_size=size)
    preprocess = Preprocess(img_size=size, in_channels=3, decode_size=48)
    faces = torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8)
    x, y = model_input(preprocess, faces), torch.tensor([0, 1, 2, 3])

    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "a training step changed nothing"

    everything = trainable(model)
    apply_freeze(model, "head")
    assert trainable(model) and trainable(model) < everything  # the head alone learns
    apply_freeze(model, "none")
    assert trainable(model) == everything

    path = save_model(tmp_path / "m.pt", model.eval(), describe(model, preprocess, EMOTIONS_7))
    reference = TorchBackend(load_model(path)).probabilities(faces.numpy())
    exported = OnnxBackend(export_onnx(path, tmp_path / "m.onnx"))
    assert np.abs(exported.probabilities(faces.numpy()) - reference).max() < 1e-4

    maps, probs = explain_batch(load_model(path), faces, "gradcam")
    assert maps.shape == (4, 48, 48) and 0 <= maps.min() <= maps.max() <= 1
    assert np.allclose(probs, reference, atol=1e-4)


def _tampered(tmp_path, tiny_checkpoint, change):
    """A copy of the tiny model file with its description changed by ``change(description_dict)``."""
    data = torch.load(tiny_checkpoint, weights_only=True)
    change(data["vitfer"])
    path = tmp_path / "tampered.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda d: d["model_config"].update(surprise=1), "unknown model setting"),
    (lambda d: d["model_config"]["kwargs"].update(checkpoint_path="/etc/passwd"), "not architecture settings"),
    (lambda d: d.update(labels=["a", "b", "c"]), "gives 7 scores, its description names 3 labels"),
    (lambda d: d["preprocess"].update(img_size=100_000), "img_size 100000 is outside"),
    (lambda d: d["preprocess"].update(decode_size=60_000), "decode_size 60000 is outside"),
])
def test_a_model_file_is_checked_before_anything_is_built(tmp_path, tiny_checkpoint, change, message):
    with pytest.raises(ModelError, match=message):
        load_model(_tampered(tmp_path, tiny_checkpoint, change))


def test_a_small_file_that_would_unpack_to_gigabytes_is_refused_unread(tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", b"\x00" * (64 * 1024 ** 2))  # 64 MB of zeros in some 64 KB
    assert bomb.stat().st_size < 1024 ** 2
    with pytest.raises(ModelError, match="compressed .* times"):
        load_model(bomb)


def test_broken_weights_files_are_one_line(tmp_path):
    broken = tmp_path / "w.safetensors"
    broken.write_bytes(b"\xff" * 16)
    with pytest.raises(WeightImportError, match="cannot read"):
        build_model("hybrid_vit_tiny", 7, pretrained=str(broken))
