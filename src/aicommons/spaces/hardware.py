"""The hardware flavours a Space may ask for, in the Hub's ``list_spaces_hardware`` shape. The operator
offers some of them (``AICOMMONS_SPACES_HARDWARE``); on one machine every flavour runs the same way,
the limits of the local runner being the hub's Space limits."""

from __future__ import annotations

from typing import Any

Flavour = dict[str, Any]

CPU = {"ephemeralStorage": "50 GB"}


def _gpu(name: str, pretty: str, cpu: str, ram: str, model: str, vram: str, quantity: int, cents: int) -> Flavour:
    return {"name": name, "prettyName": pretty, "cpu": cpu, "ram": ram, "unitCostMicroUSD": cents * 10_000 // 60,
            "unitCostUSD": cents / 100, "unitLabel": "hour", "ephemeralStorage": "50 GB",
            "accelerator": {"type": "gpu", "model": model, "quantity": quantity, "vram": vram,
                            "manufacturer": "NVIDIA"}}


CATALOGUE: dict[str, Flavour] = {str(f["name"]): f for f in (
    {"name": "cpu-basic", "prettyName": "CPU basic", "cpu": "2 vCPU", "ram": "16 GB", "unitCostMicroUSD": 0,
     "unitCostUSD": 0, "unitLabel": "hour", **CPU},
    {"name": "cpu-upgrade", "prettyName": "CPU upgrade", "cpu": "8 vCPU", "ram": "32 GB", "unitCostMicroUSD": 500,
     "unitCostUSD": 0.03, "unitLabel": "hour", **CPU},
    _gpu("t4-small", "Nvidia T4 - small", "4 vCPU", "15 GB", "T4", "16 GB", 1, 40),
    _gpu("t4-medium", "Nvidia T4 - medium", "8 vCPU", "30 GB", "T4", "16 GB", 1, 60),
    _gpu("l4x1", "1x Nvidia L4", "8 vCPU", "30 GB", "L4", "24 GB", 1, 80),
    _gpu("a10g-small", "Nvidia A10G - small", "4 vCPU", "15 GB", "A10G", "24 GB", 1, 100),
    _gpu("a10g-large", "Nvidia A10G - large", "12 vCPU", "46 GB", "A10G", "24 GB", 1, 150),
    _gpu("a100-large", "Nvidia A100 - large", "12 vCPU", "142 GB", "A100", "80 GB", 1, 250),
    _gpu("l40sx1", "1x Nvidia L40S", "8 vCPU", "62 GB", "L40S", "48 GB", 1, 180),
    _gpu("h100", "Nvidia H100", "24 vCPU", "250 GB", "H100", "80 GB", 1, 450),
)}


def offered(names: str) -> list[Flavour]:
    """The flavours the operator offers (``AICOMMONS_SPACES_HARDWARE``), in its order; a name the
    catalogue does not know is offered with generic figures."""
    out: list[Flavour] = []
    for name in (n for n in names.split(",") if n):
        out.append(CATALOGUE.get(name) or {"name": name, "prettyName": name, "cpu": "", "ram": "",
                                           "unitCostMicroUSD": 0, "unitCostUSD": 0, "unitLabel": "hour"})
    return out
