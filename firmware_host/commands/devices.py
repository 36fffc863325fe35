"""Direct device commands: lights, camera timecode, status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

import msgspec

from firmware_host.budget.governor import LightSetting, Setting
from firmware_host.budget.power import PowerManager
from firmware_host.commands.dispatcher import CommandFailed, CommandRejected, CommandSpec
from firmware_host.config import PresetConfig
from firmware_host.devices.agent import DeviceAgent, DeviceUnavailable
from firmware_host.link.errors import LinkError
from protocols.catalogue import NackReceived
from protocols.messages.camera import CameraError, CameraState
from protocols.messages.common import Severity
from protocols.messages.light import CCT_MAX_K, CCT_MIN_K


class LightSetArgs(msgspec.Struct, forbid_unknown_fields=True):
    device: str
    intensity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)]
    cct_k: Annotated[int, msgspec.Meta(ge=CCT_MIN_K, le=CCT_MAX_K)] | None = None
    fade_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 0.0
    best_effort: bool = False  # over budget: take the most the power budget allows


class LightPresetArgs(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    fade_s: Annotated[float, msgspec.Meta(ge=0, le=600)] | None = None  # else the preset's


class LightPowerArgs(msgspec.Struct, forbid_unknown_fields=True):
    device: str
    on: bool


class CamerasArgs(msgspec.Struct, forbid_unknown_fields=True):
    cameras: list[str] | None = None


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CameraArgs(msgspec.Struct, forbid_unknown_fields=True):
    camera: str


class ClipArgs(msgspec.Struct, forbid_unknown_fields=True):
    camera: str
    clip_id: Annotated[int, msgspec.Meta(ge=1)]


def intensity_permille(pct: float) -> int:
    """0.1 % steps, as the wire carries them; finer values are refused, not rounded away."""
    permille = round(pct * 10)
    if abs(pct * 10 - permille) > 1e-6:
        raise CommandRejected(f"intensity_pct {pct} is finer than the 0.1 % step")
    return permille


class DeviceCommands:
    def __init__(
        self,
        devices: Mapping[str, DeviceAgent],
        power: PowerManager,
        presets: Sequence[PresetConfig] = (),
        *,
        format_guard: Callable[[DeviceAgent], Awaitable[str | None]] | None = None,
        delete_guard: Callable[[DeviceAgent, int], Awaitable[str | None]] | None = None,
    ) -> None:
        """`format_guard` says why a camera's card may not be formatted now (its clips not
        safe elsewhere), or None; `delete_guard` why one of its clips may not be deleted."""
        self.devices = devices
        self.power = power
        self.presets = {preset.name: preset for preset in presets}
        self.format_guard = format_guard
        self.delete_guard = delete_guard

    def _agent(self, name: str, kind: str) -> DeviceAgent:
        agent = self.devices.get(name)
        if agent is None or agent.kind != kind:
            known = sorted(n for n, a in self.devices.items() if a.kind == kind)
            raise CommandRejected(f"{name!r} is not a configured {kind}; {kind}s: {known}")
        return agent

    async def light_set(self, args: LightSetArgs) -> dict[str, Any]:
        agent = self._agent(args.device, "light")
        requested = intensity_permille(args.intensity_pct)
        current = agent.status
        on = requested > 0 or bool(current is not None and current.on)
        decision = self.power.admit(
            args.device, LightSetting(on, requested), best_effort=args.best_effort
        )
        if not decision.allowed:
            raise CommandRejected(decision.reason)
        granted = decision.setting
        assert isinstance(granted, LightSetting)
        try:
            driver = agent.light()
            cct = args.cct_k or (current.target_cct_k if current is not None else 5600)
            if granted.permille > 0 and current is not None and not current.on:
                await driver.set_power(True)
            status = await driver.set_level(granted.permille, cct, round(args.fade_s * 1000))
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except (NackReceived, LinkError) as exc:
            raise CommandFailed(f"{args.device}: {exc}") from exc
        self.power.committed(args.device, LightSetting(status.on, status.target_intensity_permille))
        result = {
            "device": args.device,
            "target_pct": status.target_intensity_permille / 10,
            "cct_k": status.target_cct_k,
            "fade_s": args.fade_s,
            "power": decision.reason,
        }
        if granted.permille < requested:
            result["granted_pct"] = granted.permille / 10
            result["requested_pct"] = requested / 10
        return result

    async def light_preset(self, args: LightPresetArgs) -> dict[str, Any]:
        """Every light of a named look, admitted as one change: all of it fits, or none is sent."""
        preset = self.presets.get(args.name)
        if preset is None:
            raise CommandRejected(f"no preset {args.name!r}; presets: {sorted(self.presets)}")
        agents = {name: self._agent(name, "light") for name in preset.lights}
        offline = [name for name, agent in agents.items() if not agent.online]
        if offline:
            raise CommandRejected(f"preset {args.name!r}: {', '.join(offline)} offline; none set")
        looks: dict[str, LightSetting] = {}
        for name, look in preset.lights.items():
            requested = intensity_permille(look.intensity_pct)
            current = agents[name].status
            looks[name] = LightSetting(requested > 0 or bool(current and current.on), requested)
        changes: list[tuple[str, Setting]] = list(looks.items())
        decision = self.power.admit_all(changes)
        if not decision.allowed:
            raise CommandRejected(decision.reason)
        fade_ms = round((preset.fade_s if args.fade_s is None else args.fade_s) * 1000)
        outcomes = await asyncio.gather(
            *(self._apply_look(agents[name], looks[name], look.cct_k, fade_ms)
              for name, look in preset.lights.items()),
            return_exceptions=True,
        )  # fmt: skip
        applied = dict(zip(preset.lights, outcomes, strict=True))
        failed = {name: o for name, o in applied.items() if isinstance(o, BaseException)}
        if failed:
            done = sorted(set(applied) - set(failed))
            problems = "; ".join(f"{name}: {error}" for name, error in failed.items())
            raise CommandFailed(f"preset {args.name!r} partly applied (set: {done}); {problems}")
        return {"preset": args.name, "lights": applied, "fade_s": fade_ms / 1000,
                "power": decision.reason}  # fmt: skip

    async def _apply_look(
        self, agent: DeviceAgent, setting: LightSetting, cct_k: int | None, fade_ms: int
    ) -> dict[str, Any]:
        current = agent.status
        try:
            driver = agent.light()
            cct = cct_k or (current.target_cct_k if current is not None else 5600)
            if setting.permille > 0 and current is not None and not current.on:
                await driver.set_power(True)
            status = await driver.set_level(setting.permille, cct, fade_ms)
        except (DeviceUnavailable, NackReceived, LinkError) as exc:
            raise CommandFailed(str(exc)) from exc
        self.power.committed(agent.name, LightSetting(status.on, status.target_intensity_permille))
        return {"target_pct": status.target_intensity_permille / 10, "cct_k": status.target_cct_k}

    async def light_power(self, args: LightPowerArgs) -> dict[str, Any]:
        agent = self._agent(args.device, "light")
        level = agent.status.target_intensity_permille if agent.status is not None else 0
        decision = self.power.admit(args.device, LightSetting(args.on, level))
        if not decision.allowed:
            raise CommandRejected(decision.reason)
        try:
            status = await agent.light().set_power(args.on)
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except (NackReceived, LinkError) as exc:
            raise CommandFailed(f"{args.device}: {exc}") from exc
        self.power.committed(args.device, LightSetting(status.on, status.target_intensity_permille))
        return {"device": args.device, "on": status.on}

    async def jam(self, args: CamerasArgs) -> dict[str, Any]:
        names = args.cameras or [n for n, a in self.devices.items() if a.kind == "camera"]
        agents = [self._agent(n, "camera") for n in names]
        results = await asyncio.gather(*(a.jam() for a in agents), return_exceptions=True)
        offsets: dict[str, Any] = {}
        problems = []
        for agent, result in zip(agents, results, strict=True):
            if isinstance(result, BaseException):
                problems.append(f"{agent.name}: {result}")
            else:
                offsets[agent.name] = {
                    "offset_us": round(result.offset_s * 1e6),
                    "uncertainty_us": round(result.uncertainty_s * 1e6),
                    "measured_at": round(result.at, 6),
                }
        if problems:
            raise CommandFailed("jam incomplete: " + "; ".join(problems))
        return {"jammed": offsets}

    async def format_media(self, args: CameraArgs) -> dict[str, Any]:
        agent = self._agent(args.camera, "camera")
        try:
            if self.format_guard is not None:
                refusal = await self.format_guard(agent)
                if refusal is not None:
                    raise CommandRejected(refusal)
            await agent.camera().format_media()
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except (NackReceived, LinkError) as exc:
            raise CommandFailed(f"{args.camera}: {exc}") from exc
        return {"camera": args.camera, "formatted": True}

    async def delete_clip(self, args: ClipArgs) -> dict[str, Any]:
        agent = self._agent(args.camera, "camera")
        try:
            if self.delete_guard is not None:
                refusal = await self.delete_guard(agent, args.clip_id)
                if refusal is not None:
                    raise CommandRejected(refusal)
            await agent.camera().delete_clip(args.clip_id)
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except (NackReceived, LinkError) as exc:
            raise CommandFailed(f"{args.camera}: {exc}") from exc
        return {"camera": args.camera, "deleted": args.clip_id}

    async def clear_error(self, args: CameraArgs) -> dict[str, Any]:
        """Return a camera from ERROR to STANDBY without a power cycle, once its cause is gone
        (the camera itself refuses while, say, it is still too hot, and says why)."""
        agent = self._agent(args.camera, "camera")
        try:
            before = await agent.refresh_status()
            if before.state is not CameraState.ERROR and before.error is CameraError.NONE:
                raise CommandRejected(f"{args.camera} has no error to clear ({before.state.name})")
            await agent.camera().clear_error()
            after = await agent.refresh_status()
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except NackReceived as exc:
            raise CommandRejected(f"{args.camera} keeps its error: {exc}") from exc
        except LinkError as exc:
            raise CommandFailed(f"{args.camera}: {exc}") from exc
        agent.bus.emit(
            "camera.error_cleared",
            Severity.INFO,
            f"{args.camera}: {before.error.name} cleared, camera {after.state.name}",
            source=args.camera,
            error=before.error.name,
        )
        return {
            "camera": args.camera,
            "cleared": before.error.name,
            "state": after.state.name.lower(),
        }

    async def status(self, _: NoArgs) -> dict[str, Any]:
        return {"devices": {n: a.snapshot() for n, a in self.devices.items()}}

    def commands(self) -> list[CommandSpec[Any]]:
        return [
            CommandSpec("light.set", LightSetArgs, self.light_set,
                        "Fade a light to an intensity (0.1 % steps) and colour temperature."),
            CommandSpec("light.preset", LightPresetArgs, self.light_preset,
                        "Set every light of a named look together, with a fade."),
            CommandSpec("light.power", LightPowerArgs, self.light_power,
                        "Switch a light's LED driver on or off."),
            CommandSpec("camera.jam", CamerasArgs, self.jam,
                        "Jam camera timecode to the daemon's reference now."),
            CommandSpec("camera.clear_error", CameraArgs, self.clear_error,
                        "Return a camera from ERROR to STANDBY once the cause is gone."),
            CommandSpec("camera.format", CameraArgs, self.format_media,
                        "Erase a camera's media.", hazardous=True),
            CommandSpec("clip.delete", ClipArgs, self.delete_clip,
                        "Delete one clip from a camera's media.", hazardous=True),
            CommandSpec("status", NoArgs, self.status, "Every device's current state."),
        ]  # fmt: skip
