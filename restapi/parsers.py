"""Request body parsers that refuse what the standard ones would crash on."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No create or estimate body nests deeper than `transitions` (an array of objects), so 16
# levels leave room for any valid request while refusing bombs before they are walked.
MAX_JSON_DEPTH = 16


def json_depth_exceeds(value, limit: int) -> bool:
    """True if `value` nests arrays or objects more than `limit` deep (walked iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """JSONParser with a nesting bound: Python's decoder recurses per level, so a body of
    100,000 "[" raised RecursionError (a 500) instead of a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            deep = True
        else:
            deep = json_depth_exceeds(data, MAX_JSON_DEPTH)
        if deep:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep.")
        return data
