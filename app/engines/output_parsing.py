"""Per-choice parsing of a decoder's streamed output into reasoning, answer text and tool calls.

vLLM's own parsers do the recognising: a reasoning parser (`deepseek_r1`: `<think>...</think>`),
a tool parser for `tool_choice` auto (`hermes`: `<tool_call>{...}</tool_call>`), and vLLM's
scanner of the JSON array that structured outputs force for `required`. This module keeps
their state per choice and turns what they find into the protocol's events, in the order the
text came: reasoning, then answer text, then tool-call pieces.

Only requests that use reasoning or tools build any of this: the engine's plain path never
sees it. Tool-call ids are ours (`call_` + 24 hex), and the argument pieces of each call
concatenate to that call's arguments (checked against the whole-text parse at the end, any
remainder sent then, as vLLM's serving does).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.engines.vllm_tools import (
    chat_request,
    make_parser,
    new_call_id,
    reasoning_class,
    tool_class,
)
from app.protocol import ToolCallDelta, ToolUse

logger = logging.getLogger(__name__)

ToolMode = Literal["auto", "required", "named"]


@dataclass
class Step:
    """What one engine step of a choice adds: reasoning text, answer text, tool-call pieces."""

    reasoning: str = ""
    content: str = ""
    calls: list[ToolCallDelta] = field(default_factory=list)


class OutputParsing:
    """One request's parsing setup: which of vLLM's parsers run, shared by its choices."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        reasoning_parser: str | None,
        tools: ToolUse | None,
        tool_parser: str | None,
    ) -> None:
        self.tokenizer = tokenizer  # vLLM's cached wrapper: parsers read its vocabulary
        self.reasoning_cls = reasoning_class(reasoning_parser) if reasoning_parser else None
        self.tool_mode: ToolMode | None = None
        self.tool_name: str | None = None
        self.tool_parser_cls: Any = None
        self.request: Any = None  # the ChatCompletionRequest vLLM's tool parsers are given
        self.skip_special_tokens = True
        if tools is not None and tools.choice != "none":
            self.tool_mode = tools.choice
            self.tool_name = tools.name
            if tools.choice == "auto":
                assert tool_parser is not None  # check_tools refused it otherwise
                self.tool_parser_cls = tool_class(tool_parser)
                self.request = chat_request(tools)
                # what the parser asks of the request (hermes: keep special tokens, since
                # some models mark <tool_call> special and skipping it would hide the calls)
                probe = make_parser(self.tool_parser_cls, tokenizer, self.request.tools)
                self.request = probe.adjust_request(self.request)
                self.skip_special_tokens = bool(self.request.skip_special_tokens)
        if self.reasoning_cls is not None:
            probe = make_parser(self.reasoning_cls, tokenizer)
            marks = [getattr(probe, "start_token", None), getattr(probe, "end_token", None)]
            special = set(getattr(tokenizer, "all_special_tokens", ()))
            if any(mark in special for mark in marks if mark):
                self.skip_special_tokens = False  # else the text would lose the markers

    def choice(self, index: int, prompt_token_ids: Sequence[int] | None) -> ChoiceParser:
        reasoning = make_parser(self.reasoning_cls, self.tokenizer) if self.reasoning_cls else None
        tool_parser = None
        if self.tool_parser_cls is not None:
            tool_parser = make_parser(self.tool_parser_cls, self.tokenizer, self.request.tools)
        return ChoiceParser(
            index,
            reasoning=reasoning,
            prompt_token_ids=prompt_token_ids or (),
            tool_mode=self.tool_mode,
            tool_name=self.tool_name,
            tool_parser=tool_parser,
            request=self.request,
        )


class ChoiceParser:
    """The parsing state of one choice: feed it each engine step, then `finish()`."""

    def __init__(
        self,
        index: int,
        *,
        reasoning: Any = None,
        prompt_token_ids: Sequence[int] = (),
        tool_mode: ToolMode | None = None,
        tool_name: str | None = None,
        tool_parser: Any = None,
        request: Any = None,
    ) -> None:
        self.index = index
        self._reasoning = reasoning
        # vLLM's rule: reasoning is open unless the prompt already closed it
        self._in_reasoning = reasoning is not None and not reasoning.is_reasoning_end(
            list(prompt_token_ids)
        )
        self._opened_in_prompt = self._in_reasoning
        self._reasoning_text = ""
        self._reasoning_ids: list[int] = []
        self._all_ids: list[int] = []  # kept only when a reasoning parser runs
        self._tool_mode = tool_mode
        self._tool_name = tool_name
        self._tool_parser = tool_parser
        self._request = request
        self._text = ""  # answer-side text so far (after reasoning), tool markup included
        self._ids: list[int] = []
        self._content_sent = ""
        self._ids_of_calls: list[str] = []  # our id per call index the parser reported
        self._arguments: list[str] = []  # argument text sent per call

    @property
    def called(self) -> bool:
        return bool(self._ids_of_calls)

    def feed(self, text: str, token_ids: Sequence[int]) -> Step:
        step = Step()
        content, content_ids = text, token_ids
        if self._reasoning is not None:
            self._all_ids.extend(token_ids)
            if self._in_reasoning:
                content, content_ids = self._split_reasoning(text, token_ids, step)
        if content or content_ids:
            self._answer(content, content_ids, step)
        return step

    def _split_reasoning(
        self, text: str, token_ids: Sequence[int], step: Step
    ) -> tuple[str, Sequence[int]]:
        parser = self._reasoning
        previous_text, previous_ids = self._reasoning_text, self._reasoning_ids
        current_text = previous_text + text
        current_ids = previous_ids + list(token_ids)
        message = parser.extract_reasoning_streaming(
            previous_text, current_text, text, previous_ids, current_ids, token_ids
        )
        self._reasoning_text, self._reasoning_ids = current_text, current_ids
        step.reasoning = (message.reasoning or "") if message is not None else ""
        content = (message.content or "") if message is not None else ""
        content_ids: Sequence[int] = ()
        if parser.is_reasoning_end_streaming(current_ids, list(token_ids)):
            self._in_reasoning = False
            content_ids = parser.extract_content_ids(list(token_ids))
            self._reasoning_text, self._reasoning_ids = "", []
        elif content:
            content_ids = token_ids
        return content, content_ids

    def _answer(self, text: str, token_ids: Sequence[int], step: Step) -> None:
        mode = self._tool_mode
        if mode is None:
            step.content = text
            return
        if mode == "named":  # the text is the arguments
            if not text:
                return
            if not self.called:
                self._announce(0, self._tool_name or "", text, step)
            else:
                self._arguments[0] += text
                step.calls.append(ToolCallDelta(self.index, 0, arguments=text))
            return
        if not text:
            return
        previous_text, previous_ids = self._text, self._ids
        current_text = previous_text + text
        current_ids = previous_ids + list(token_ids)
        if mode == "required":
            from vllm.tool_parsers.streaming import extract_required_tool_call_streaming

            message, _ = extract_required_tool_call_streaming(
                previous_text=previous_text,
                current_text=current_text,
                tool_call_idx=None,
                tool_call_id_type="random",
            )
        else:
            message = self._tool_parser.extract_tool_calls_streaming(
                previous_text,
                current_text,
                text,
                previous_ids,
                current_ids,
                list(token_ids),
                self._request,
            )
        self._text, self._ids = current_text, current_ids
        if message is None:
            return
        if message.content:
            step.content += message.content
            self._content_sent += message.content
        for piece in message.tool_calls or ():
            self._take(piece, step)

    def _take(self, piece: Any, step: Step) -> None:
        function = piece.function
        name = _field(function, "name")
        arguments = _field(function, "arguments") or ""
        call = piece.index
        if call >= len(self._ids_of_calls):
            if call != len(self._ids_of_calls) or not name:
                logger.warning("tool parser skipped a call index; dropping its piece")
                return
            self._announce(call, name, arguments, step)
        elif arguments:
            self._arguments[call] += arguments
            step.calls.append(ToolCallDelta(self.index, call, arguments=arguments))

    def _announce(self, call: int, name: str, arguments: str, step: Step) -> None:
        call_id = new_call_id()
        self._ids_of_calls.append(call_id)
        self._arguments.append(arguments)
        step.calls.append(ToolCallDelta(self.index, call, call_id, name, arguments))

    # ---- the end -----------------------------------------------------------------------

    def finish(self) -> Step:
        """What is left once the choice ended: held-back answer text, argument remainders
        and calls the streaming parse had not reported, from a parse of the whole text."""
        step = Step()
        if self._tool_mode == "auto":
            self._finish_auto(step)
        elif self._tool_mode == "required":
            self._check_required()
        return step

    def _finish_auto(self, step: Step) -> None:
        text = self._text
        try:
            final = self._tool_parser.extract_tool_calls(text, self._request)
        except Exception:  # a parser failing on odd text: what streamed stands
            logger.exception("tool parser failed on the whole output")
            return
        if not final.tools_called:
            # no complete call: text the parser held back (a possible tag start) is answer
            # text, unless calls were already streamed (then the rest is broken markup)
            if not self.called and text.startswith(self._content_sent):
                step.content = text[len(self._content_sent) :]
            return
        content = final.content or ""
        if not self.called and content.startswith(self._content_sent):
            step.content = content[len(self._content_sent) :]
        for call, tool_call in enumerate(final.tool_calls):
            expected = tool_call.function.arguments
            if call >= len(self._ids_of_calls):
                self._announce(call, tool_call.function.name, expected, step)
                continue
            sent = self._arguments[call]
            if expected.startswith(sent):
                rest = expected[len(sent) :]
                if rest:
                    self._arguments[call] += rest
                    step.calls.append(ToolCallDelta(self.index, call, arguments=rest))
            elif not same_json(sent, expected):
                logger.warning(
                    "streamed arguments of tool call %d differ from the final parse", call
                )

    def _check_required(self) -> None:
        try:
            calls = json.loads(self._text)
        except ValueError:
            return  # cut short (length): what streamed is all there is
        for call, item in enumerate(calls if isinstance(calls, list) else ()):
            parameters = item.get("parameters") if isinstance(item, dict) else None
            if call >= len(self._arguments) or not same_json(self._arguments[call], parameters):
                logger.warning("streamed required tool call %d differs from the array", call)

    def finish_reason(self, engine_reason: str) -> str:
        """`tool_calls` when the model called tools and stopped by itself (a forced named
        function keeps `stop`, as OpenAI and vLLM answer; a cut-off call keeps `length`)."""
        if engine_reason == "stop" and self.called and self._tool_mode in ("auto", "required"):
            return "tool_calls"
        return engine_reason

    def reasoning_tokens(self) -> int:
        parser = self._reasoning
        if parser is None:
            return 0
        ids = self._all_ids
        start = getattr(parser, "start_token_id", None)
        if self._opened_in_prompt and start is not None and start not in ids:
            ids = [start, *ids]  # the prompt opened the section: count from the first token
        return parser.count_reasoning_tokens(ids)


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def same_json(text: str, value: Any) -> bool:
    """Whether `text` is JSON for `value` (a JSON text itself when a string is given)."""
    try:
        left = json.loads(text)
        right = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return False
    return left == right
