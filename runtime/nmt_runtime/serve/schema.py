"""The shapes of the server's requests and answers (pydantic models, so /docs shows them).

Two APIs share one server: nmt's own JSON API (`POST /api/translate`: n-best lists,
scores, subword pieces and attention) and LibreTranslate's public API (`POST
/translate`, `GET /languages`), so existing LibreTranslate clients work unchanged. Every
error, from either API, is one line of JSON: `{"error": "what was wrong and the fix"}`,
the shape LibreTranslate uses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nmt_runtime.settings import MAX_BEAM, MAX_LENGTH_PENALTY

# ISO 639-1 names for GET /languages; a code not listed here is its own name.
LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


class ErrorBody(BaseModel):
    error: str


def body_doc(model: type[BaseModel], form: bool = False) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that parses its body itself: `model`, sent as
    JSON (or as form fields), whose schema `nmt_runtime.serve.app` adds to the components."""
    kinds = ["application/json"] + (["application/x-www-form-urlencoded"] if form else [])
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    content = {kind: {"schema": schema} for kind in kinds}
    return {"requestBody": {"required": True, "content": content}}


# TranslateRequest's fields that say what to translate; every other field is a decode
# option (constraints: per text), handed to the model's engine as is (`options()`), so that
# a new decode field is one line here: an engine refuses by name one it does not have
# (nmt_runtime.serve.engine).
REQUEST_FIELDS = frozenset({"text", "model", "nbest", "attention"})


class TranslateRequest(BaseModel):
    """nmt's JSON API: one text or a list, with optional search settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | list[str] = Field(description="A sentence, or a list of sentences.")
    model: str | None = Field(None, description="A name from GET /models; may be left out "
                              "when the server has one model.")  # fmt: skip
    beam_size: int | None = Field(None, ge=1, le=MAX_BEAM, description="1: greedy search.")
    nbest: int = Field(1, ge=1, le=MAX_BEAM, description="Translations per text (≤ beam).")
    attention: bool = Field(False, description="Return the attention matrix of the best.")
    alignment: bool = Field(
        False, description="Return the best's word alignment (Pharaoh i-j) from its attention."
    )
    length_penalty: float | None = Field(
        None, ge=0, le=MAX_LENGTH_PENALTY, allow_inf_nan=False, description="GNMT α."
    )
    length_normalization: Literal["none", "average", "gnmt"] | None = None
    coverage_penalty: float | None = Field(
        None,
        ge=0,
        le=MAX_LENGTH_PENALTY,
        allow_inf_nan=False,
        description="Wu et al.'s coverage β (0: none); needs a model with attention.",
    )
    constraints: list[list[str]] | list[str] | None = Field(
        None,
        description="Phrases each translation must hold (terminology): one list per text "
        "(a single text: its list alone); needs beam_size 2 or more.",
    )
    replace_unk: bool | None = Field(
        None,
        description="Replace each <unk> by the source word of most attention (or its entry "
        "in the model's decode.unk_dictionary); null: the model's decode.replace_unk.",
    )

    def options(self) -> dict[str, Any]:
        """The decode fields (all but `REQUEST_FIELDS`), for the engine's `plan`; a single
        text's constraints sent as its flat list of phrases become a list of that one list
        (so `[]` is one text without constraints)."""
        chosen = {k: v for k, v in self if k not in REQUEST_FIELDS}
        phrases = self.constraints
        if isinstance(self.text, str) and phrases is not None:
            if all(isinstance(p, str) for p in phrases):
                chosen["constraints"] = [phrases]
        return chosen


class Alternative(BaseModel):
    text: str
    score: float


class TranslationResult(BaseModel):
    text: str = Field(description="The best translation ('' for an empty text).")
    score: float | None = Field(description="Its length-normalized log-probability.")
    alternatives: list[Alternative] = Field(description="The next best, when nbest > 1.")
    source_pieces: list[str]
    target_pieces: list[str] = Field(description="The best translation's pieces, no </s>.")
    attention: list[list[float]] | None = Field(
        None, description="(target pieces + </s>) × source pieces, rows sum to 1."
    )
    alignment: str | None = Field(
        None,
        description="Asked with alignment: 'i-j' pairs, source word i aligned to target word "
        "j (0-based, whitespace words), one per target word.",
    )


class TranslateResponse(BaseModel):
    model: str
    translations: list[TranslationResult]


class LibreRequest(BaseModel):
    """LibreTranslate's `POST /translate` body (JSON or form fields)."""

    model_config = ConfigDict(extra="ignore")  # clients send fields of other versions

    q: str | list[str]
    source: str = "auto"
    target: str
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(0, ge=0, le=MAX_BEAM - 1)
    api_key: str | None = None
    model: str | None = Field(None, description="nmt's addition: a name from GET /models; "
                              "left out, the first served model for the pair.")  # fmt: skip


class LibreResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's field name)
    alternatives: list[str] | list[list[str]] | None = None


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class ModelInfo(BaseModel):
    name: str
    source: str
    target: str
    directories: list[str] = Field(description="More than one: an ensemble.")
    attention: bool = Field(description="Whether it can return attention matrices.")
    decode: dict[str, object] = Field(description="The recipe's decode settings (defaults).")
    results: dict[str, object] | None = Field(description="The model's results.json scores.")


class Health(BaseModel):
    status: Literal["ok"]
    models: list[str]
    api_key_required: bool
