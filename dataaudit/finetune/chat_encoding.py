"""How the causal-LM backend turns chat rows into token ids: chat template or plain turns.

Kept apart from the training and generation code so the token-budget check and the benches
render prompts exactly as the reference fine-tune does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

logger = logging.getLogger(__name__)

#: Prompt format for models without a chat template (Alpaca style, the most common SFT layout).
PLAIN_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
#: Label of tokens the loss ignores (the prompt's), as Hugging Face models expect.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt + response and the labels the loss sees (``IGNORE_INDEX`` on the prompt)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def response_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def scored_tokens(self) -> int:
        """Response tokens the loss sees: all but one at position 0, which nothing predicts."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def encode_example(prompt_ids: Sequence[int], response_ids: Sequence[int], *, max_length: int) -> EncodedExample:
    """Join prompt and response so the response fits ``max_length``.

    The prompt loses tokens from the left (its end — the question and the turn marker — is
    what the response depends on); the response is cut only when it alone would leave less than
    a quarter of the window to the prompt.
    """
    prompt, response = list(prompt_ids), list(response_ids)
    truncated = len(prompt) + len(response) > max_length
    if truncated:
        kept_prompt = min(len(prompt), max(1, max_length // 4))
        response = response[: max(1, max_length - kept_prompt)]
        room = max_length - len(response)
        prompt = prompt[len(prompt) - room:] if room > 0 else []
    return EncodedExample(input_ids=prompt + response, labels=[IGNORE_INDEX] * len(prompt) + response,
                          truncated=truncated)


def chat_messages(prompt: str, system: str | None, shots: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for shot_prompt, shot_response in shots:
        messages += [{"role": "user", "content": shot_prompt}, {"role": "assistant", "content": shot_response}]
    return messages + [{"role": "user", "content": prompt}]


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """What the model reads before its response: the chat template with the generation prompt,
    or :data:`PLAIN_TEMPLATE` turns for a model without one."""
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # noqa: BLE001 - jinja raises its own errors, e.g. "no system role"
            if messages[0]["role"] != "system":
                raise
            logger.debug("chat template rejected a system turn (%s); merging it into the first user turn", error)
            system, first, rest = messages[0], messages[1], messages[2:]
            merged = {"role": "user", "content": f"{system['content']}\n\n{first['content']}"}
            return tokenizer.apply_chat_template([merged, *rest], tokenize=False, add_generation_prompt=True)
    parts = [f"{m['content']}\n\n" for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    for user, assistant in zip(turns[0::2], turns[1::2]):
        parts.append(PLAIN_TEMPLATE.format(prompt=user["content"]) + f"{assistant['content']}\n\n")
    parts.append(PLAIN_TEMPLATE.format(prompt=turns[-1]["content"]))
    return "".join(parts)


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    text = render_prompt(tokenizer, messages)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if getattr(tokenizer, "chat_template", None):
        return ids  # a chat template writes its own special tokens, BOS included
    return with_bos(tokenizer, ids)


def response_ids(tokenizer: Any, response: str | None) -> list[int]:
    """The response's tokens plus end-of-sequence, so the model learns to stop."""
    ids = tokenizer(response or "", add_special_tokens=False)["input_ids"]
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def plain_ids(tokenizer: Any, text: str) -> list[int]:
    return with_bos(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"])


def with_bos(tokenizer: Any, ids: list[int]) -> list[int]:
    bos = tokenizer.bos_token_id
    return [bos, *ids] if bos is not None and (not ids or ids[0] != bos) else ids


def log_truncations(truncated: int, total: int, max_length: int) -> None:
    if truncated:
        logger.warning("%d of %d example(s) exceed %d tokens; their prompts were cut from the left",
                       truncated, total, max_length)
