// What a page does that a reader cannot get past: text whose contrast with what is behind it
// is under WCAG 2.1 AA (4.5:1, or 3:1 for large text), an image without alt, a form field
// with no label, a link or button with no words. Returns one line per problem.
() => {
  const problems = [];
  const channels = (colour) => colour.match(/[\d.]+/g).map(Number);
  const luminance = (colour) => {
    const [r, g, b] = channels(colour).slice(0, 3).map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const opaque = (colour) => { const c = channels(colour); return c.length < 4 || c[3] > 0.5; };
  // What is behind an element: the first background going up, every stop of a gradient.
  const behind = (element) => {
    for (let el = element; el; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (style.backgroundImage.includes("gradient")) {
        return style.backgroundImage.match(/rgba?\([^)]*\)/g);
      }
      if (opaque(style.backgroundColor)) return [style.backgroundColor];
    }
    return ["rgb(255, 255, 255)"];
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const seen = new Set();
  for (const el of document.querySelectorAll("body *")) {
    const words = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!words || el.closest('[aria-hidden="true"], [disabled]') || el.disabled) continue;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    const needed = large ? 3 : 4.5;
    const worst = Math.min(...behind(el).map((b) => ratio(style.color, b)));
    const key = `${el.tagName}.${el.className} ${style.color}`;
    if (worst < needed && !seen.has(key)) {
      seen.add(key);
      problems.push(`contrast ${worst.toFixed(2)} < ${needed}: ${key} "${el.textContent.trim().slice(0, 30)}"`);
    }
  }
  for (const img of document.querySelectorAll("img:not([alt])")) problems.push(`image without alt: ${img.src}`);
  for (const field of document.querySelectorAll("input:not([type=hidden]):not([type=submit]), select, textarea")) {
    const labelled = field.closest("label") || (field.id && document.querySelector(`label[for="${field.id}"]`))
      || field.getAttribute("aria-label") || field.getAttribute("aria-labelledby");
    if (!labelled) problems.push(`field without a label: ${field.outerHTML.slice(0, 80)}`);
  }
  for (const control of document.querySelectorAll("a[href], button")) {
    if (!control.textContent.trim() && !control.getAttribute("aria-label") && !control.querySelector("img[alt]:not([alt=''])")) {
      problems.push(`control without words: ${control.outerHTML.slice(0, 80)}`);
    }
  }
  if (!document.documentElement.lang) problems.push("the page names no language");
  return problems;
}
