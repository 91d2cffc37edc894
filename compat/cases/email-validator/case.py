"""validation: parse and validate email addresses (syntax, internationalized domains), normalize them, explain refusals."""

from email_validator import EmailNotValidError, validate_email


def compute(task):
    from email.utils import parseaddr  # stdlib: split "Name <address>" headers first

    out = []
    for header in task["headers"]:
        name, address = parseaddr(header)
        try:
            info = validate_email(address, check_deliverability=False)
            out.append({"name": name, "normalized": info.normalized, "ascii": info.ascii_email, "local": info.local_part, "domain": info.domain, "smtputf8": info.smtputf8})
        except EmailNotValidError as error:
            out.append({"name": name, "address": address, "error": str(error)})
    return out
