"""The grant's stored codes as words (application statuses, ledger and report kinds, the priority groups of
the national framework), added to the web app's ``code`` filter (:func:`web.codes.add_code_groups`)."""

from __future__ import annotations

from flask_babel import gettext as _


def groups() -> dict[str, dict[str, str]]:
    # Built per call: gettext answers in the language of the request being rendered.
    return {
        # the audit action of `samflyt users community` (community.cli)
        "action": {"community_saved": _("organisations placed")},
        "application": {
            "submitted": _("Submitted"), "returned": _("Returned to the applicant"), "registered": _("Registered"),
            "granted": _("Granted"), "rejected": _("Rejected"), "refused_late": _("Refused: too late"),
            "withdrawn": _("Withdrawn"), "completed": _("Completed"),
        },
        "ledger": {
            "allocation": _("Allocation"), "carry_over_in": _("Carried over from last year"),
            "carry_over_out": _("Carried over to next year"), "set_aside": _("Set aside"),
            "set_aside_release": _("Set-aside released"), "set_aside_spent": _("Set-aside spent"),
            "reservation": _("Reserved"), "release": _("Released"), "payout": _("Paid out"),
        },
        # the five priority groups of the national framework for health communities (domain.md)
        "priority_group": {"children_young": _("Children and young people"),
                           "chronic_multiple": _("People with multiple chronic conditions"),
                           "mental_substance": _("Severe mental illness and substance use problems"),
                           "frail_elderly": _("Frail elderly people"),
                           "pregnancy_birth": _("Pregnancy, childbirth and postnatal care")},
        "meeting_status": {"planned": _("Planned"), "held": _("Held")},
        # the roles, as the lanes of the diagrams name them (a lane's name is the role it is for)
        "role": {"applicant": _("Applicant"), "au": _("Working committee (AU)"),
                 "committee": _("Evaluation committee"), "secretariat": _("Secretariat"),
                 "ssu": _("Strategic committee (SSU)"), "fsu": _("Professional committee (FSU)"),
                 "chair": _("Chair"), "party": _("Party to the agreement"), "responsible": _("Responsible"),
                 "workgroup": _("Working group")},
        "case_status": {"registered": _("Waiting for a meeting"), "on_agenda": _("On the agenda"),
                        "decided": _("Decided"), "postponed": _("Postponed")},
        "follow_up_status": {"open": _("Open"), "late": _("Late"), "done": _("Done")},
        "case_type": {"Orientering": _("Information"), "Drøfting": _("Discussion"), "Beslutning": _("Decision"),
                      "Dialog": _("Dialogue")},
        "report_kind": {"status": _("Status report"), "deviation": _("Deviation report"),
                        "final": _("Final report")},
        "report_state": {"submitted": _("Submitted"), "approved": _("Approved"), "returned": _("Returned")},
        "agreement_version": {"draft": _("Draft"), "hearing": _("On hearing"), "anchored": _("Anchored"),
                              "approved": _("Approved"), "signed": _("Signed"), "in_force": _("In force"),
                              "superseded": _("Superseded")},
        "agreement_event": {
            "registered": _("Registered"), "merged": _("Merged into another agreement"),
            "split": _("Split into new agreements"), "split_from": _("Split out of another agreement"),
            "revision_needed": _("Need for revision"), "mandate": _("Mandate given"),
            "working_group": _("Working group set up"), "draft": _("Draft saved"),
            "status_report": _("Status report to SSU"), "hearing_sent": _("Sent on hearing"),
            "hearing_answer": _("Hearing answer"), "hearing_closed": _("Hearing closed"),
            "comments_answered": _("Comments answered"), "anchored": _("Anchored"),
            "not_anchored": _("Not anchored"), "approved": _("Approved by SSU"), "signed": _("Signed"),
            "signature_refused": _("Signature refused"), "signed_by_all": _("Signed by all parties"),
            "in_force": _("In force"), "superseded": _("Superseded"), "evaluated": _("Evaluated")},
        "revision_stage": {"mandate": _("Waiting for the mandate"), "working_group": _("Setting up the working group"),
                           "drafting": _("Drafting"), "hearing": _("On hearing"),
                           "comments": _("Answering the hearing comments"), "anchoring": _("Anchoring"),
                           "approval": _("Waiting for SSU"), "signatures": _("Signatures"),
                           "evaluation": _("In force, evaluations planned"), "done": _("Done")},
        "appendix_kind": {"agreement": _("Agreement"), "procedure": _("Procedure"), "guideline": _("Guideline"),
                          "appendix": _("Appendix")},
    }
