"""Screen name (as flows pass it to ``ports.show``) -> the widget class that draws it.

``FLOW_SCREENS`` are exactly the screens the flows show (attendance, enrolment, admin, the
citizen services of kiosk/flows/services/screens.py); a test reads every ``show()`` call under
``kiosk/flows`` and fails on a name missing here or here for no flow. ``WINDOW_SCREENS`` are the
window's own: the citizen-service menu (opened from the attendance idle screen; choosing a
service posts the event that starts its flow) and the screen for a name with no widget.
"""

from kiosk.ui import screens_admin as admin
from kiosk.ui import screens_attendance as att
from kiosk.ui import screens_provision as prov
from kiosk.ui import screens_service as svc
from kiosk.ui import screens_service_more as more
from kiosk.ui import screens_voice as voice

FLOW_SCREENS = {
    # attendance
    "attendance_idle": att.AttendanceIdle,
    "face_guidance": att.FaceScreen,
    "face_challenge": att.FaceScreen,
    "face_checking": att.FaceScreen,
    "not_recognised": att.NotRecognised,
    "id_keypad": att.IdKeypad,
    "pin_keypad": att.PinKeypad,
    "punch_choice": att.PunchChoice,
    "result": att.Result,
    "refused": att.Refused,
    "finger_verify": more.FingerVerify,
    # the voice print (kiosk/flows/voice_step.py): one widget, updated in place while recording
    "voice_phrase": voice.VoiceReading,
    "voice_recording": voice.VoiceReading,
    "voice_guidance": voice.VoiceReading,
    # admin
    "admin_locked": admin.AdminLocked,
    "admin_menu": admin.AdminMenu,
    "admin_page": admin.AdminPage,
    "admin_confirm": admin.AdminConfirm,
    # enrolment
    "enrol_details": admin.EnrolDetails,
    "enrol_face": admin.EnrolFace,
    "enrol_duplicate": admin.EnrolDuplicate,
    "enrol_finger": admin.FingerScreen,
    "enrol_finger_retry": admin.EnrolFingerRetry,
    "enrol_voice_retry": voice.EnrolVoiceRetry,
    "enrol_pin": admin.EnrolPin,
    "enrol_summary": admin.EnrolSummary,
    "enrol_failed": admin.EnrolFailed,
    "enrol_done": admin.EnrolDone,
    "delete_confirm": admin.DeleteConfirm,
    # citizen services (kiosk/flows/services/screens.py)
    "service_id": svc.ServiceId,
    "service_code": svc.ServiceCode,
    "service_code_cooldown": svc.ServiceCodeCooldown,
    "service_consent": svc.ServiceConsent,
    "service_face": svc.ServiceFace,
    "service_finger": svc.ServiceFinger,
    "service_assisted": more.ServiceAssisted,
    "service_pin": svc.ServicePin,
    "service_mobile": svc.ServiceMobile,
    "service_email": more.ServiceEmail,
    "service_credentials": more.ServiceCredentials,
    "service_language": more.ServiceLanguage,
    "service_terms": more.ServiceTerms,
    "service_verify": more.ServiceVerify,
    "service_confirm": more.ServiceConfirm,
    "service_done": more.ServiceDone,
    "service_refused": more.ServiceRefused,
    "service_offline": more.ServiceOffline,
}

WINDOW_SCREENS = {
    "service_menu": svc.ServiceMenu,
    "error": more.ErrorScreen,
}

PROVISION_SCREENS = {
    "provision_waiting": prov.ProvisionWaiting,
    "provision_network": prov.ProvisionNetwork,
    "provision_registering": prov.ProvisionRegistering,
    "provision_refused": prov.ProvisionRefused,
    "provision_failed": prov.ProvisionFailed,
    "provision_self_test": prov.ProvisionSelfTest,
    "provision_done": prov.ProvisionDone,
}

SCREENS = {**FLOW_SCREENS, **WINDOW_SCREENS, **PROVISION_SCREENS}
