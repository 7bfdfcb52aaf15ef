/**
 * A minimal Gemma-style Jinja chat template: `<start_of_turn>role\n…<end_of_turn>\n` per
 * message, the assistant role spelled `model`, and a `model` turn opened for generation.
 */
export const GEMMA_STYLE_CHAT_TEMPLATE =
  '{{ bos_token }}' +
  '{% for message in messages %}' +
  "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n" +
  '{% endfor %}' +
  '{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}';
