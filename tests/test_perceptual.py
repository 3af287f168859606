"""LPIPS/DISTS wrappers against direct library calls on the same (seeded random) backbone weights,
unavailability without genuine weights, and the weight import command."""

import functools
import http.server
import subprocess
import sys
import threading

import lpips
import pytest
import torch
import torchvision
from DISTS_pytorch import DISTS as LibraryDISTS

from benchmark.errors import BenchmarkError, InputError
from benchmark.metrics import ScoringBatch
from benchmark.metrics import weights as weights_module
from benchmark.metrics.perceptual import DISTS, LPIPS, STLPIPS
from benchmark.metrics.weights import BACKBONES, Backbone, download_backbone, import_backbone


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def save_random_backbone(checkpoints, key):
    torch.manual_seed(0)
    model = torchvision.models.alexnet() if key == "alexnet" else torchvision.models.vgg16()
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), checkpoints / BACKBONES[key].file_name)


def image_pair():
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(2, 64, 64, generator=generator) * 3.0  # magnitudes, not in [0, 1]
    return target + 0.3 * torch.rand(2, 64, 64, generator=generator), target


def as_library_input(images):
    scaled = images / images.amax(dim=(-2, -1), keepdim=True)
    return scaled.unsqueeze(1).repeat(1, 3, 1, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_wrapper_equals_the_library_on_the_same_weights(torch_home, net):
    save_random_backbone(torch_home, "alexnet" if net == "alex" else "vgg16")
    recon, target = image_pair()
    ours = LPIPS(net, verify_weights=False)
    assert ours.available, ours.reason
    values = ours(ScoringBatch(recon, target, target.amax().expand(2)))
    library = lpips.LPIPS(net=net, verbose=False)
    expected = library(as_library_input(recon), as_library_input(target), normalize=True).flatten()
    torch.testing.assert_close(values, expected.to(torch.float64), atol=1e-6, rtol=1e-5)


def test_dists_wrapper_equals_the_library_on_the_same_weights(torch_home):
    save_random_backbone(torch_home, "vgg16")
    recon, target = image_pair()
    ours = DISTS(verify_weights=False)
    values = ours(ScoringBatch(recon, target, target.amax().expand(2)))
    expected = LibraryDISTS()(as_library_input(recon), as_library_input(target))
    torch.testing.assert_close(values, expected.to(torch.float64), atol=1e-6, rtol=1e-5)


def test_missing_or_random_weights_make_metrics_unavailable(torch_home):
    for metric in (LPIPS("alex"), LPIPS("vgg"), DISTS()):
        assert not metric.available and "not found" in metric.reason
        with pytest.raises(RuntimeError, match="unavailable"):
            metric(ScoringBatch(*image_pair(), torch.ones(2)))
    save_random_backbone(torch_home, "alexnet")
    random_weights = LPIPS("alex", verify_weights=True)
    assert not random_weights.available and "sha256" in random_weights.reason


def test_stlpips_uses_shipped_weights_and_is_zero_for_identical_images():
    metric = STLPIPS()
    assert metric.available
    _, target = image_pair()
    assert torch.all(metric(ScoringBatch(target, target, torch.ones(2))) == 0)


def test_import_copies_a_file_whose_hash_matches(torch_home, tmp_path, monkeypatch):
    source = tmp_path / "downloaded.pth"
    source.write_bytes(b"pretend weights")
    digest = weights_module.sha256_file(source)
    monkeypatch.setitem(BACKBONES, "alexnet", Backbone("alexnet", "alexnet-test.pth", digest[:8], "lpips_alex"))
    installed = import_backbone(source)
    assert installed == torch_home / "alexnet-test.pth" and installed.read_bytes() == b"pretend weights"


def test_import_refuses_a_foreign_file(torch_home, tmp_path):
    source = tmp_path / "foreign.pth"
    source.write_bytes(b"not a backbone")
    with pytest.raises(InputError, match="matches none"):
        import_backbone(source)
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "weights", "--import", str(source)], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert not torch_home.exists() or not any(torch_home.iterdir())


@pytest.fixture
def weight_server(tmp_path):
    """A static HTTP server on 127.0.0.1 (an ephemeral port) serving ``tmp_path / "served"``."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_installs_a_file_whose_hash_matches_and_refuses_a_corrupted_one(
    torch_home, weight_server, monkeypatch
):
    served, base = weight_server
    genuine = b"pretend alexnet weights" * 1000
    (served / "alexnet-good.pth").write_bytes(genuine)
    digest = weights_module.hashlib.sha256(genuine).hexdigest()
    good = Backbone("alexnet", "alexnet-good.pth", digest[:8], "lpips_alex", f"{base}/alexnet-good.pth")
    monkeypatch.setitem(BACKBONES, "alexnet", good)
    installed = download_backbone("alexnet")
    assert installed == torch_home / "alexnet-good.pth" and installed.read_bytes() == genuine
    installed.unlink()
    corrupted = bytearray(genuine)
    corrupted[100] ^= 0xFF  # one flipped byte in transit
    (served / "alexnet-good.pth").write_bytes(bytes(corrupted))
    with pytest.raises(InputError, match="nothing installed"):
        download_backbone("alexnet")
    assert not any(torch_home.iterdir())  # no partial or temporary file left behind
    missing = Backbone("alexnet", "alexnet-gone.pth", digest[:8], "lpips_alex", f"{base}/alexnet-gone.pth")
    monkeypatch.setitem(BACKBONES, "alexnet", missing)
    with pytest.raises(BenchmarkError, match="cannot download"):
        download_backbone("alexnet")
    assert not any(torch_home.iterdir())
