"""The text-to-views model's sizes: the official yaml's, or those the checkpoint's tensor shapes imply.

`TextModelConfig` builds the three components (`wala.text.checkpoint.build_components`); every size is
bounded, whoever wrote the config. The state-dict prefixes below are the official single-file layout's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from wala.errors import WalaError, one_line
from wala.hub.args import CONFIG_BYTES_LIMIT  # its yaml and OpenCLIP json too
from wala.io.files import read_limited

SCALE_FACTOR = 0.18215
GROUPS = 32  # GroupNorm groups in the UNet and the VAE, as released
LATENT_CHANNELS, IMAGE_SIZE = 4, 256  # the released model's 256² maps from 32² latents
UNET, TEXT, VAE = "model.diffusion_model.", "cond_stage_model.model.", "first_stage_model."

CONFIG_RANGES = {
    "model_channels": (1, 4096),
    "channel_mult": (1, 16),
    "num_res_blocks": (1, 16),
    "attention_levels": (0, 7),
    "num_head_channels": (1, 1024),
    "transformer_depth": (1, 32),
    "context_dim": (1, 8192),
    "camera_dim": (1, 1024),
    "vae_ch": (1, 1024),
    "vae_ch_mult": (1, 16),
    "vae_res_blocks": (1, 16),
    "z_channels": (1, 64),
    "text_width": (1, 8192),
    "text_layers": (2, 128),
    "text_heads": (1, 128),
    "text_mlp": (1, 32768),
    "vocab": (1, 1_000_000),
    "context_length": (1, 1024),
    "image_size": (8, 4096),
}


@dataclass
class TextModelConfig:
    """What builds the three components: the official yaml's sizes, or those the shapes imply."""

    model_channels: int = 320
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    attention_levels: list[int] = field(default_factory=lambda: [0, 1, 2])  # levels with transformers
    num_head_channels: int = 64
    transformer_depth: int = 1
    context_dim: int = 1024
    camera_dim: int = 16
    vae_ch: int = 128
    vae_ch_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    vae_res_blocks: int = 2
    z_channels: int = 4
    text_width: int = 1024
    text_layers: int = 24  # the tower's; the model runs all but the last
    text_heads: int = 16
    text_mlp: int = 4096
    vocab: int = 49408
    context_length: int = 77
    scale_factor: float = SCALE_FACTOR
    image_size: int = IMAGE_SIZE  # the side of the maps it draws: what it was trained at

    def __post_init__(self):
        """Every size typed and bounded (wide around SD2.1's and ViT-H/14's), whoever wrote the config: a
        400-byte config must not make the model it describes larger than any file could fill."""
        for name, (low, high) in CONFIG_RANGES.items():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not 1 <= len(value) <= 8:
                raise WalaError(f"text model config: {name} must list 1…8 values, got {len(value)}")
            if not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in values):
                raise WalaError(f"text model config: {name} is {str(value)[:40]}; it must be integers in {low}…{high}")
        if any(not 0 <= level < len(self.channel_mult) for level in self.attention_levels):
            raise WalaError(f"text model config: attention_levels {self.attention_levels} name missing levels")
        if any(self.model_channels * m % GROUPS for m in self.channel_mult) or any(
            self.vae_ch * m % GROUPS for m in self.vae_ch_mult
        ):
            raise WalaError(f"text model config: every UNet and VAE width must be a multiple of {GROUPS} (GroupNorm)")
        if any(self.model_channels * m % self.num_head_channels for m in self.channel_mult):
            raise WalaError("text model config: num_head_channels does not divide every UNet width")
        if self.text_width % self.text_heads:
            raise WalaError("text model config: text_heads does not divide text_width")
        if not (isinstance(self.scale_factor, (int, float)) and 0 < self.scale_factor < 100):
            raise WalaError(f"text model config: scale_factor is {self.scale_factor!r}; it must be in (0, 100)")
        if self.image_size % self.vae_stride:
            raise WalaError(
                f"text model config: image_size {self.image_size} is not a multiple of the VAE's {self.vae_stride}"
            )

    @property
    def vae_stride(self) -> int:
        """Pixels per latent cell: the VAE halves the side once per level after the first."""
        return 2 ** (len(self.vae_ch_mult) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_stride

    def unet(self) -> dict:
        widths = [self.model_channels * m for m in self.channel_mult]
        levels = range(len(widths))
        return dict(
            sample_size=self.latent_size,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            down_block_types=["CrossAttnDownBlock2D" if i in self.attention_levels else "DownBlock2D" for i in levels],
            up_block_types=[
                "CrossAttnUpBlock2D" if i in self.attention_levels else "UpBlock2D" for i in reversed(levels)
            ],
            block_out_channels=widths,
            layers_per_block=self.num_res_blocks,
            cross_attention_dim=self.context_dim,
            use_linear_projection=True,
            attention_head_dim=[w // self.num_head_channels for w in widths],  # heads, in SD2's naming
            transformer_layers_per_block=self.transformer_depth,
            class_embed_type="projection",
            projection_class_embeddings_input_dim=self.camera_dim,
        )

    def vae(self) -> dict:
        widths = [self.vae_ch * m for m in self.vae_ch_mult]
        return dict(
            in_channels=3,
            out_channels=3,
            latent_channels=self.z_channels,
            block_out_channels=widths,
            down_block_types=["DownEncoderBlock2D"] * len(widths),
            up_block_types=["UpDecoderBlock2D"] * len(widths),
            layers_per_block=self.vae_res_blocks,
            sample_size=self.image_size,
            scaling_factor=self.scale_factor,
        )

    def text(self) -> dict:
        return dict(
            vocab_size=self.vocab,
            hidden_size=self.text_width,
            intermediate_size=self.text_mlp,
            num_hidden_layers=self.text_layers - 1,
            num_attention_heads=self.text_heads,
            max_position_embeddings=self.context_length,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            projection_dim=self.text_width,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=0,
        )

    @classmethod
    def from_yaml(cls, path: Path) -> TextModelConfig:
        import yaml

        try:
            params = yaml.safe_load(read_limited(path, CONFIG_BYTES_LIMIT, "model config"))["model"]["params"]
            unet = params["unet_config"]["params"]
            dd = params["first_stage_config"]["params"]["ddconfig"]
            mult = list(unet["channel_mult"])
            sizes = dict(
                model_channels=unet["model_channels"],
                channel_mult=mult,
                num_res_blocks=unet["num_res_blocks"],
                attention_levels=[i for i in range(len(mult)) if 2**i in unet["attention_resolutions"]],
                num_head_channels=unet["num_head_channels"],
                transformer_depth=unet["transformer_depth"],
                context_dim=unet["context_dim"],
                camera_dim=unet.get("camera_dim", 16),
                vae_ch=dd["ch"],
                vae_ch_mult=list(dd["ch_mult"]),
                vae_res_blocks=dd["num_res_blocks"],
                z_channels=dd["z_channels"],
                scale_factor=params.get("scale_factor", SCALE_FACTOR),
            )
            arch = (params["cond_stage_config"].get("params") or {}).get("arch")
            text_json = path.parent / f"{arch}.json"
            if arch and text_json.is_file():  # an OpenCLIP model config (the ViT-H-14 one is the default)
                text = json.loads(read_limited(text_json, CONFIG_BYTES_LIMIT, "model config"))["text_cfg"]
                sizes.update(
                    text_width=text["width"],
                    text_layers=text["layers"],
                    text_heads=text.get("heads", text["width"] // 64),
                    text_mlp=int(text["width"] * text.get("mlp_ratio", 4.0)),
                    vocab=text["vocab_size"],
                    context_length=text["context_length"],
                )
        except (
            yaml.YAMLError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            ZeroDivisionError,
            RecursionError,
        ) as exc:
            raise WalaError(f"cannot read the model config {path}: {one_line(exc)}") from None
        return cls(**sizes)

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple]) -> TextModelConfig:
        """The SD2 layout read off the tensor shapes (keys without the `model.` prefix); head widths of
        64 (not in the shapes) as SD2.1's UNet and ViT-H/14's text tower."""

        def count(prefix: str) -> int:
            return len({k[len(prefix) :].split(".")[0] for k in shapes if k.startswith(prefix)})

        try:
            mc = shapes[UNET + "input_blocks.0.0.weight"][0]
            levels = 1 + sum(1 for k in shapes if k.startswith(UNET + "input_blocks.") and k.endswith(".0.op.weight"))
            blocks = (count(UNET + "input_blocks.") - 1 - (levels - 1)) // levels
            first = [1 + level * (blocks + 1) for level in range(levels)]
            mult = [shapes[UNET + f"input_blocks.{i}.0.out_layers.3.weight"][0] // mc for i in first]
            attention = [level for level, i in enumerate(first) if UNET + f"input_blocks.{i}.1.norm.weight" in shapes]
            depth = count(UNET + f"input_blocks.{first[attention[0]]}.1.transformer_blocks.") if attention else 1
            context = next(v[1] for k, v in shapes.items() if k.endswith("attn2.to_k.weight"))
            vae_ch = shapes[VAE + "decoder.conv_out.weight"][1]
            vae_levels = count(VAE + "decoder.up.")
            vae_mult = [shapes[VAE + f"decoder.up.{i}.block.0.conv2.weight"][0] // vae_ch for i in range(vae_levels)]
            vocab, width = shapes[TEXT + "token_embedding.weight"]
            return cls(
                model_channels=mc,
                channel_mult=mult,
                num_res_blocks=blocks,
                attention_levels=attention,
                transformer_depth=depth,
                context_dim=context,
                camera_dim=shapes[UNET + "camera_embed.0.weight"][1],
                vae_ch=vae_ch,
                vae_ch_mult=vae_mult,
                vae_res_blocks=count(VAE + "decoder.up.0.block.") - 1,
                z_channels=shapes[VAE + "decoder.conv_in.weight"][1],
                text_width=width,
                text_layers=count(TEXT + "transformer.resblocks."),
                text_heads=width // 64,
                text_mlp=shapes[TEXT + "transformer.resblocks.0.mlp.c_fc.weight"][0],
                vocab=vocab,
                context_length=shapes[TEXT + "positional_embedding"][0],
            )
        except (KeyError, StopIteration, IndexError, ZeroDivisionError) as exc:
            raise WalaError(
                f"the checkpoint is not a text-to-views model in the SD2 layout (no {exc} among its tensors)"
            ) from exc
