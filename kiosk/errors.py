"""The one exception tree of the firmware.

Every error the firmware raises on purpose is a ``KioskError``; each also subclasses the
built-in it most resembles, so callers that only know Python still catch it sensibly.
Errors that a person at the kiosk must act on carry a ``guidance`` code that the UI turns
into a sentence ("clean and dry your finger").
"""


class KioskError(Exception):
    """Base of every error the firmware raises on purpose."""

    guidance = None

    def __init__(self, message="", *, guidance=None):
        super().__init__(message)
        if guidance is not None:
            self.guidance = guidance


class ConfigError(KioskError, ValueError):
    """A setting is missing, unknown, of the wrong type or out of range."""


class StorageError(KioskError, RuntimeError):
    """The database could not be opened, migrated or written."""


class SealError(StorageError):
    """A sealed blob cannot be opened: the data key is missing or wrong, or the blob was altered."""


class ChainError(StorageError):
    """The attendance hash chain is broken: a record was altered, removed or inserted."""


class UnknownPersonError(StorageError, LookupError):
    """A record names a person id that is not in the people table."""


class CorruptDatabaseError(StorageError):
    """The database file is empty, not a database, or fails SQLite's integrity check."""


class DiskFullError(StorageError, OSError):
    """Free space is below the floor for this kind of write, or the disk is full."""


class ExportError(KioskError, OSError):
    """An export could not be written to the chosen folder (missing, a link, not a folder, full, too big)."""


class HardwareError(KioskError, OSError):
    """A device did not respond or answered in a way we cannot use."""


class ActuatorLimitError(KioskError, ValueError):
    """An actuator was asked for a number that is not finite or beyond its configured bound."""


class DeviceAbsentError(HardwareError):
    """The device is not connected or does not answer at all."""


class DeviceBusyError(HardwareError):
    """The device is busy with another operation."""


class CommunicationError(HardwareError):
    """Bytes on the wire were corrupt, truncated or unexpected."""


class CameraError(HardwareError):
    """The camera delivers no frames, or only frozen ones."""


class CameraAbsentError(CameraError, DeviceAbsentError):
    """No camera answers at the configured device."""


class MicrophoneError(HardwareError):
    """The microphone cannot be opened, stopped delivering audio, or delivers only digital silence."""


class SensorError(HardwareError):
    """Base of fingerprint-sensor errors."""


class NoFingerError(SensorError):
    """No finger was on the sensor when one was expected."""

    guidance = "place_finger"


class FingerMovedError(SensorError):
    """The finger moved or was lifted during capture."""

    guidance = "hold_still"


class PoorImageError(SensorError):
    """The image was too messy or had too few features (wet, dirty, oily, misplaced)."""

    guidance = "clean_and_dry"


class FingerMismatchError(SensorError):
    """Captures of one enrolment did not come from the same finger."""

    guidance = "same_finger_again"


class NoMatchError(SensorError):
    """The finger matches nobody in the library."""

    guidance = "not_recognised"


class WrongPasswordError(SensorError, PermissionError):
    """The sensor rejected the configured password."""


class SyncError(KioskError, ConnectionError):
    """The central server could not be reached or refused a request."""


class RejectedError(SyncError):
    """The server understood a request and refused it (bad signature, replay, unknown device)."""


class UntrustedAnswerError(SyncError):
    """An answer is not signed by the pinned server key (unsigned, wrongly signed, or replayed)."""


class CommandRefusedError(KioskError, RuntimeError):
    """A server command the kiosk understood but will not carry out now (e.g. a restart too soon)."""


class ProvisioningError(KioskError, RuntimeError):
    """The provisioning file is invalid or registration failed."""


class ModelError(KioskError, RuntimeError):
    """A model file is missing, corrupt, or the runtime cannot load it."""


class ModelMismatchError(KioskError, ValueError):
    """A face vector comes from another embedder model (or has another size) than the gallery's."""


class TemplateSourceError(KioskError, ValueError):
    """Templates offered for a gallery near-tie are not the ones behind its codes (the codes decide instead)."""


class CancelledError(KioskError):
    """A blocking operation was cancelled by its caller."""
