# ruff: noqa: E501 - templates are data, kept verbatim
"""Chat templates of real models and known template-injection payloads (test data).

Benign templates are copied from llama.cpp's tests/test-chat-template.cpp (each one is the
``chat_template`` of the Hugging Face model named) and, for the long tool-use templates,
from llama.cpp's models/templates/*.jinja (files next to this module).
https://github.com/ggml-org/llama.cpp/blob/master/tests/test-chat-template.cpp

Payloads: the CVE-2024-34359 proof of concept
(https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829) and
Jinja2 payloads from PayloadsAllTheThings (Server Side Template Injection/Jinja2), with
``id``/``ls`` commands replaced by a harmless ``touch``-less ``echo``: they are only parsed.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent / "chat_templates"

# name -> template, as shipped in each model's tokenizer_config.json
BENIGN: dict[str, str] = {
    "teknium/OpenHermes-2.5-Mistral-7B (ChatML)": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "mistralai/Mistral-7B-Instruct-v0.2": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    "TheBloke/FusionNet_34Bx2_MoE-AWQ (Llama 2 style)": "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == 'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif %}\n{% endfor %}",
    "bofenghuang/vigogne-2-70b-chat (Llama 2 style)": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif true == true and not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set system_message = 'Vous êtes Vigogne, un assistant IA créé par Zaion Lab. Vous suivez extrêmement bien les instructions. Aidez autant que vous le pouvez.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "google/gemma-7b-it": "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
    "openchat/openchat-3.5-0106": "{{ bos_token }}{% for message in messages %}{{ 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}{% endfor %}{% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}",
    "deepseek-ai/deepseek-coder-33b-instruct": "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}",
    "CohereForAI/c4ai-command-r-plus": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set system_message = 'You are Command-R, a brilliant, sophisticated, AI-assistant trained to assist human users by providing thorough responses. You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% if system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
    "meta-llama/Meta-Llama-3-8B-Instruct": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
    "microsoft/Phi-3-mini-4k-instruct": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}",
    "microsoft/Phi-3-small-8k-instruct": "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
    "microsoft/Phi-3-vision-128k-instruct": "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}{{- '<|assistant|>\n' -}}{% endif %}",
    "mlabonne/AlphaMonarch-7B": "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}",
}
BENIGN_FILES = sorted(HERE.glob("*.jinja"))

# Known server-side template injection payloads: every one must be HIGH.
PAYLOADS: dict[str, str] = {
    "CVE-2024-34359 PoC": "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}{{x()._module.__builtins__['__import__']('os').popen(\"echo hi\")}}{%endif%}{% endfor %}",
    "subclasses via str": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "list base subclasses": "{{ [].__class__.__base__.__subclasses__() }}",
    "cycler globals os": "{{ cycler.__init__.__globals__.os.popen('echo hi').read() }}",
    "joiner globals": "{{ joiner.__init__.__globals__.os.popen('echo hi').read() }}",
    "namespace globals": "{{ namespace.__init__.__globals__.os.popen('echo hi').read() }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].popen('echo hi').read() }}",
    "lipsum builtins import": "{{ lipsum.__globals__.__builtins__.__import__('os').popen('echo hi').read() }}",
    "self context": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "request attr application": "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
    "attr hex escaped": "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fbase\\x5f\\x5f')|attr('\\x5f\\x5fsubclasses\\x5f\\x5f')() }}",
    "attr unicode escaped": "{{ ()|attr('\\u005f\\u005fclass\\u005f\\u005f') }}",
    "concatenated dunder": "{{ ()['_'~'_cla'~'ss_'~'_'] }}",
    "set-built dunder": "{% set u = '_' * 2 %}{% set c = u ~ 'class' ~ u %}{{ ''[c] }}",
    "join-built dunder": "{{ ''[['__', 'class', '__']|join] }}",
    "format-built dunder": "{{ ''['%sclass%s'|format('__', '__')] }}",
    "reversed dunder": "{{ ''['__ssalc__'|reverse] }}",
    "replace-built dunder": "{{ ''['XXclassXX'|replace('X', '_')] }}",
    "config items": "{{ config.__class__.__init__.__globals__['os'].popen('echo hi').read() }}",
    "map attr": "{{ [1]|map(attribute='__class__')|list }}",
    "range globals": "{{ range.__init__.__globals__ }}",
    "getattr call": "{{ getattr(x, 'y') }}",
    "dict subscript builtins": "{{ self.__dict__['_TemplateReference__context'] }}",
    "str format attribute": "{{ '{0.__class__}'.format(x) }}",
    "mro attribute": "{{ ''.__class__.mro()[1] }}",
    "os via attribute chain": "{{ x.os.popen('echo hi') }}",
    "import call": "{{ __import__('os') }}",
    "eval call": "{{ eval('1+1') }}",
}
