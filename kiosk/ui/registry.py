"""Screen name (as flows pass it to ``ports.show``) -> the widget class that draws it.

``FLOW_SCREENS`` are shown by today's flows (attendance, enrolment, admin); a test reads every
``show()`` call in ``kiosk/flows`` and fails on a name missing here. ``WAITING_SCREENS`` are built
for the citizen-service flows (issue 10) and shown today only by the screenshots and tests.
"""

from kiosk.ui import screens_admin as admin
from kiosk.ui import screens_attendance as att
from kiosk.ui import screens_service as svc

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
    "enrol_pin": admin.EnrolPin,
    "enrol_summary": admin.EnrolSummary,
    "enrol_failed": admin.EnrolFailed,
    "enrol_done": admin.EnrolDone,
    "delete_confirm": admin.DeleteConfirm,
}

WAITING_SCREENS = {
    "home": svc.Home,
    "service_menu": svc.ServiceMenu,
    "service_id": svc.ServiceId,
    "service_mobile": svc.ServiceMobile,
    "service_code": svc.ServiceCode,
    "service_face": svc.ServiceFace,
    "service_finger": svc.ServiceFinger,
    "service_pin": svc.ServicePin,
    "service_username": svc.ServiceUsername,
    "service_password": svc.ServicePassword,
    "service_email": svc.ServiceEmail,
    "service_consent": svc.ServiceConsent,
    "service_confirm": svc.ServiceConfirm,
    "service_success": svc.ServiceSuccess,
    "service_assisted": svc.ServiceAssisted,
    "error": svc.ErrorScreen,
}

SCREENS = {**FLOW_SCREENS, **WAITING_SCREENS}
