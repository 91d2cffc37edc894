"""data formats: write an .xlsx workbook (formulas, number formats, merged cells) to bytes and read it back."""

import io


def compute(task):
    import openpyxl  # the spreadsheet library is loaded only when a report is made
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(task["header"])
    for row in task["rows"]:
        sheet.append(row)
    last = sheet.max_row
    sheet.append(["Total", f"=SUM(B2:B{last})", f"=SUM(C2:C{last})"])
    for cell in sheet["C"][1:]:
        cell.number_format = "#,##0.00 €"
    sheet.merge_cells(start_row=last + 2, start_column=1, end_row=last + 2, end_column=3)
    sheet.cell(row=last + 2, column=1, value="merged note")
    book.create_sheet("Empty")
    buffer = io.BytesIO()
    book.save(buffer)
    again = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))
    read = again["Sales"]
    return {
        "sheets": again.sheetnames,
        "values": [list(row) for row in read.iter_rows(values_only=True)],
        "formats": [read.cell(row=r, column=3).number_format for r in range(2, read.max_row)],
        "merged": [str(rng) for rng in read.merged_cells.ranges],
        "dimensions": read.dimensions,
        "column_28": get_column_letter(28),
    }
