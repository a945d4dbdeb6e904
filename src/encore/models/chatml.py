"""The ChatML chat template of the builtin models, with the markers TRL needs for assistant-only loss."""

from __future__ import annotations


def chatml_template(default_system: str | None = None) -> str:
    """A ChatML chat template (``<|im_start|>role\\ncontent<|im_end|>\\n`` per message).

    Assistant content and its ``<|im_end|>`` sit inside ``{% generation %}`` … ``{% endgeneration %}``
    so that ``return_assistant_tokens_mask`` (TRL's ``assistant_only_loss``) trains the model to stop;
    the markers render nothing, so the text is plain ChatML. ``add_generation_prompt`` appends
    ``<|im_start|>assistant\\n``.

    Args:
        default_system: System message inserted when a conversation has none (SmolLM2 does this).

    Returns:
        The Jinja template.
    """
    head = ""
    if default_system is not None:
        head = (
            "{%- if loop.first and messages[0]['role'] != 'system' %}"
            "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' }}"
            "{%- endif %}"
        )
    return (
        "{%- for message in messages %}" + head + "{%- if message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant\\n' }}"
        "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
        "{{- '\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )
