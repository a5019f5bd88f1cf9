"""The Paddle converter against real Paddle: a Swin network built with Paddle's own layers and the
authors' parameter names, random weights, saved with paddle.save, run in Paddle; converted with our
tool and run with torch and ONNX Runtime, the logits agree."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from cfcsp_sdk import ModelConfigError, Recognizer, UnsafePickleError
from cfcsp_sdk.convert_paddle import SWIN_S_ARGS, convert_paddle, paddle_to_torch_state, read_pdparams

if os.environ.get("CI"):
    import paddle  # .ci/run installs paddlepaddle: in CI this test must run, never skip
else:
    paddle = pytest.importorskip("paddle", reason="pip install paddlepaddle to run the converter tests")
pnn = paddle.nn
F = paddle.nn.functional

TINY = {
    "image_size": 32,
    "patch_size": 2,
    "in_channels": 3,
    "embed_dim": 8,
    "depths": [2, 2, 2, 2],
    "num_heads": [1, 2, 2, 4],
    "window_size": 2,
}


def _partition(x, ws):
    b, h, w, c = x.shape
    x = x.reshape([b, h // ws, ws, w // ws, ws, c]).transpose([0, 1, 3, 2, 4, 5])
    return x.reshape([-1, ws * ws, c])


def _reverse(x, ws, h, w):
    c = x.shape[-1]
    x = x.reshape([-1, h // ws, w // ws, ws, ws, c]).transpose([0, 1, 3, 2, 4, 5])
    return x.reshape([-1, h, w, c])


class PAttention(pnn.Layer):
    def __init__(self, dim, heads, ws):
        super().__init__()
        self.heads, self.ws, self.scale = heads, ws, (dim // heads) ** -0.5
        self.relative_position_bias_table = self.create_parameter(
            [(2 * ws - 1) ** 2, heads], default_initializer=pnn.initializer.Normal(std=0.5)
        )
        coords = np.stack(np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij")).reshape(2, -1)
        rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + ws - 1
        self.register_buffer("relative_position_index", paddle.to_tensor(rel[..., 0] * (2 * ws - 1) + rel[..., 1]))
        self.qkv = pnn.Linear(dim, 3 * dim)
        self.proj = pnn.Linear(dim, dim)

    def forward(self, x, mask):
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape([bw, n, 3, self.heads, c // self.heads]).transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q.matmul(k, transpose_y=True)
        bias = paddle.index_select(self.relative_position_bias_table, self.relative_position_index.flatten())
        attn = attn + bias.reshape([n, n, -1]).transpose([2, 0, 1]).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape([bw // nw, nw, self.heads, n, n]) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.reshape([-1, self.heads, n, n])
        attn = F.softmax(attn, axis=-1)
        return self.proj(attn.matmul(v).transpose([0, 2, 1, 3]).reshape([bw, n, c]))


class PMlp(pnn.Layer):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.fc2 = pnn.Linear(dim, 4 * dim), pnn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class PBlock(pnn.Layer):
    def __init__(self, dim, heads, res, ws, shift):
        super().__init__()
        if res <= ws:
            ws, shift = res, 0
        self.ws, self.shift, self.res = ws, shift, res
        self.norm1, self.norm2 = pnn.LayerNorm(dim), pnn.LayerNorm(dim)
        self.attn, self.mlp = PAttention(dim, heads, ws), PMlp(dim)
        mask = None
        if shift:
            img = np.zeros((1, res, res, 1), np.float32)
            cnt = 0
            for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                    img[:, hs, wsl] = cnt
                    cnt += 1
            win = _partition(paddle.to_tensor(img), ws).squeeze(-1)
            m = win.unsqueeze(1) - win.unsqueeze(2)
            mask = paddle.where(m != 0, paddle.full_like(m, -100.0), paddle.zeros_like(m))
        self.register_buffer("attn_mask", mask)

    def forward(self, x):
        b, n, c = x.shape
        h = self.norm1(x).reshape([b, self.res, self.res, c])
        if self.shift:
            h = paddle.roll(h, shifts=(-self.shift, -self.shift), axis=(1, 2))
        h = _reverse(self.attn(_partition(h, self.ws), self.attn_mask), self.ws, self.res, self.res)
        if self.shift:
            h = paddle.roll(h, shifts=(self.shift, self.shift), axis=(1, 2))
        x = x + h.reshape([b, n, c])
        return x + self.mlp(self.norm2(x))


class PMerge(pnn.Layer):
    def __init__(self, dim, res):
        super().__init__()
        self.res = res
        self.norm = pnn.LayerNorm(4 * dim)
        self.reduction = pnn.Linear(4 * dim, 2 * dim, bias_attr=False)

    def forward(self, x):
        b, _, c = x.shape
        x = x.reshape([b, self.res, self.res, c])
        x = paddle.concat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
        return self.reduction(self.norm(x.reshape([b, -1, 4 * c])))


class PStage(pnn.Layer):
    def __init__(self, dim, depth, heads, res, ws, down):
        super().__init__()
        self.blocks = pnn.LayerList([PBlock(dim, heads, res, ws, 0 if i % 2 == 0 else ws // 2) for i in range(depth)])
        self.downsample = PMerge(dim, res) if down else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class PEmbed(pnn.Layer):
    def __init__(self, patch, cin, dim):
        super().__init__()
        self.patch_embed = pnn.Conv2D(cin, dim, patch, stride=patch)
        self.norm = pnn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.patch_embed(x).flatten(2).transpose([0, 2, 1]))


class PaddleSwin(pnn.Layer):
    """The authors' layout: patch_embedding, stages.S.blocks.B, stages.S.downsample, norm (unused), fc."""

    def __init__(self, num_classes, image_size, patch_size, in_channels, embed_dim, depths, num_heads, window_size):
        super().__init__()
        self.patch_embedding = PEmbed(patch_size, in_channels, embed_dim)
        res = image_size // patch_size
        self.stages = pnn.LayerList(
            [
                PStage(embed_dim * 2**i, d, h, res // 2**i, window_size, i < len(depths) - 1)
                for i, (d, h) in enumerate(zip(depths, num_heads))
            ]
        )
        dim = embed_dim * 2 ** (len(depths) - 1)
        self.norm = pnn.LayerNorm(dim)
        self.fc = pnn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embedding(x)
        for s in self.stages:
            x = s(x)
        return self.fc(x.mean(axis=1))


def make_checkpoint(path, num_classes, args, seed, wrap=None):
    paddle.seed(seed)
    net = PaddleSwin(num_classes, **args)
    net.eval()
    rng = np.random.default_rng(seed)
    for p in net.parameters():  # random weights of a realistic scale, LayerNorms not at identity
        p.set_value(
            (
                rng.normal(size=p.shape) * (0.2 if len(p.shape) > 1 else 0.1)
                + (1.0 if p.name.endswith("w_0") and len(p.shape) == 1 else 0.0)
            ).astype(np.float32)
        )
    state = net.state_dict()
    paddle.save({wrap: state} if wrap else state, str(path))
    return net


def test_paddle_torch_and_onnx_agree(tmp_path):
    coarse_net = make_checkpoint(tmp_path / "c.pdparams", 5, TINY, seed=1)
    neg_net = make_checkpoint(tmp_path / "n.pdparams", 4, TINY, seed=2, wrap="model")
    repo = convert_paddle(tmp_path / "c.pdparams", tmp_path / "n.pdparams", tmp_path / "repo", arch_args=TINY)
    assert sorted(p.name for p in repo.iterdir()) == [
        "README.md",
        "coarse.onnx",
        "coarse.safetensors",
        "config.json",
        "negative.onnx",
        "negative.safetensors",
    ]
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    with paddle.no_grad():
        ref = {"coarse": coarse_net(paddle.to_tensor(x)).numpy(), "negative": neg_net(paddle.to_tensor(x)).numpy()}
    assert np.abs(ref["coarse"]).max() > 0.1  # non-trivial logits
    for backend in ("torch", "onnx"):
        rec = Recognizer(repo, backend=backend)
        for name, net in rec.cascade.networks.items():
            np.testing.assert_allclose(net(x), ref[name], atol=1e-4, err_msg=f"{backend}/{name}")
    card = (repo / "README.md").read_text()
    assert "c.pdparams" in card and "57.96" in card and "60.17" in card


def test_full_swin_s_layout_is_accepted(tmp_path):
    """A checkpoint with Swin-S's 329 tensors in the authors' layout maps onto our module exactly."""
    from cfcsp_sdk.models import build_network

    make_checkpoint(tmp_path / "s.pdparams", 5, SWIN_S_ARGS, seed=3, wrap="model_ema")
    params = read_pdparams(tmp_path / "s.pdparams")
    assert len(params) == 329
    state = paddle_to_torch_state(params, build_network("swin-s-cfcsp", 5, SWIN_S_ARGS))
    assert len(state) == 329
    np.testing.assert_array_equal(
        state["stages.2.blocks.17.attn.qkv.weight"].numpy(), params["stages.2.blocks.17.attn.qkv.weight"].T
    )
    np.testing.assert_array_equal(
        state["stages.1.blocks.0.attn.relative_position_bias_table"].numpy(),
        params["stages.1.blocks.0.attn.relative_position_bias_table"],
    )


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    from cfcsp_sdk.models import build_network

    make_checkpoint(tmp_path / "c.pdparams", 5, TINY, seed=1)
    params = read_pdparams(tmp_path / "c.pdparams")
    params.pop("stages.0.blocks.1.mlp.fc2.bias")
    params["head.extra"] = np.zeros(3, np.float32)
    params["fc.weight"] = np.zeros((64, 7), np.float32)
    with pytest.raises(ModelConfigError) as err:
        paddle_to_torch_state(params, build_network("swin-s-cfcsp", 5, TINY))
    msg = str(err.value)
    assert "stages.0.blocks.1.mlp.fc2.bias" in msg and "head.extra" in msg and "fc.weight" in msg


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/cfcsp_pwned",))


def test_malicious_checkpoint_is_refused_before_running(tmp_path):
    import os

    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"model": {"fc.weight": Exploit()}}, protocol=4))
    with pytest.raises(UnsafePickleError):
        read_pdparams(path)
    assert not os.path.exists("/tmp/cfcsp_pwned")


def test_cli_convert_paddle_reports_missing_files(tmp_path):
    import subprocess
    import sys

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfcsp_sdk.cli",
            "convert-paddle",
            "--coarse",
            str(tmp_path / "c.pdparams"),
            "--negative",
            str(tmp_path / "n.pdparams"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "no such file" in p.stderr
