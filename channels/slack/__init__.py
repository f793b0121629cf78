"""The Slack channel: mentions, DMs and thread replies in; replies, approval buttons and questions out.

- ``inbound``: a Slack message event -> a ``Trigger`` (or the answer to a pending question);
- ``answers``: an Approve/Reject click, an edit or a reply -> a checked ``HumanResponse``;
- ``editor``: the Edit modal, built from a tool's JSON schema, and the arguments it returns;
- ``approvers``: who may answer, including members of Slack user groups;
- ``blocks``: Block Kit messages and mrkdwn escaping;
- ``app``: the slack_bolt ``App`` whose listeners only persist through the ``Gateway``;
- ``outbound``: ``SlackOutbound``, which posts a thread's events in its Slack thread;
- ``config``: the channel's settings and the Web API clients built from them.
"""

CHANNEL = "slack"
"""The channel's name, on the origins of its triggers and the responses it records."""
