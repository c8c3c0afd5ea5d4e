"""The provider's text-to-speech voices: each language and the genders it has.

From the provider's "Send Voice SMS" page, which lists each language with its genders:
https://dev.octopush.com/en/sms-gateway-api-documentation/voice-sms-api/send-voice-sms/
Codes are kept exactly as the provider writes them (`arb`, `il-PH`, `mn-CN`), since they are
what its API takes. el-GR, hu-HU and es-LA are in the page's older voice_language list but
not in the part of the gender list we could read: both genders stay allowed for them.
The three schemas repeat this list (a test keeps them equal).
"""

from __future__ import annotations

PAGE = "https://dev.octopush.com/en/sms-gateway-api-documentation/voice-sms-api/send-voice-sms/"
BOTH = ("female", "male")
FEMALE = ("female",)

VOICES: dict[str, tuple[str, ...]] = {
    "pl-PL": BOTH,
    "sv-SE": FEMALE,
    "de-DE": BOTH,
    "en-GB": BOTH,
    "en-US": BOTH,
    "es-ES": BOTH,
    "fr-FR": BOTH,
    "it-IT": BOTH,
    "pt-BR": BOTH,
    "ru-RU": BOTH,
    "arb": FEMALE,
    "ca-ES": FEMALE,
    "zh-HK": BOTH,
    "mn-CN": FEMALE,
    "da-DK": BOTH,
    "nl-NL": BOTH,
    "en-AU": BOTH,
    "en-IN": FEMALE,
    "en-NZ": FEMALE,
    "en-ZA": FEMALE,
    "il-PH": BOTH,
    "fr-CA": BOTH,
    "de-AT": FEMALE,
    "hi-IN": FEMALE,
    "is-IS": BOTH,
    "id-ID": BOTH,
    "ja-JP": BOTH,
    "ko-KR": FEMALE,
    "ms-MY": BOTH,
    "nb-NO": FEMALE,
    "pt-PT": BOTH,
    "ro-RO": FEMALE,
    "es-MX": FEMALE,
    "es-US": BOTH,
    "el-GR": BOTH,
    "hu-HU": BOTH,
    "es-LA": BOTH,
}


def gender_problem(language: object, gender: object) -> str | None:
    """Why this voice does not exist, or None (unknown values are the schema's to refuse)."""
    genders = VOICES.get(language) if isinstance(language, str) else None
    if genders is None or not isinstance(gender, str) or gender in genders:
        return None
    has = " or ".join(genders) if len(genders) > 1 else f"{genders[0]} only"
    return (
        f"'{gender}' is not a voice of {language}, which has {has}; "
        f"use {' or '.join(genders)}, or another voice_language"
    )
