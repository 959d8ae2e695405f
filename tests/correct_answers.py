"""Correct answers written differently from the solutions: each must keep full marks.

Tightened tests must not reject a right answer that is written another way (loops instead of
vectorised code, another formula, another numpy function). For every graded function there are
two independently written correct answers, here as two whole submissions per assignment:
``correct_a`` and ``correct_b`` each replace *every* answer cell of the notebook with code of its
own (``Submission.replace``, grade id -> the code a student would type, ``full_marks=True``), so
one nbgrader submission checks one alternative of every function at once. They are graded with
the wrong answers, through real nbgrader (``tests/test_nbgrader_roundtrip.py``) and through the
mutation tool's in-process grading (``tests/test_mutants.py``).

:data:`CORRECT_ANSWERS` lists them by assignment; :func:`alternatives` gives the pairs
``(assignment, function) -> the answers that cover it``, which ``tests/test_mutants.py`` checks
against the registry of graded functions (two per function).

The one thing these answers share with the solutions is the specification in the notebook's text:
they are written from it, not from the solution's code.
"""

from __future__ import annotations

from wrong_answers import Submission

# ----------------------------------------------------------------------------- 00 metrics

METRICS_A = {
    "confusion_matrix": '''def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """cm[i, j] = number of pixels of target class i predicted as class j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(np.asarray(pred).ravel().tolist(), np.asarray(target).ravel().tolist()):
        if ignore_index is not None and t == ignore_index:
            continue
        cm[t, p] += 1
    return cm
''',
    "pixel_accuracy": '''def pixel_accuracy(cm):
    """Fraction of all counted pixels that are classified correctly."""
    cm = np.asarray(cm, dtype=np.float64)
    correct = sum(cm[i, i] for i in range(cm.shape[0]))
    return float(correct / np.sum(cm))
''',
    "mean_accuracy": '''def mean_accuracy(cm):
    """Per-class accuracy n_ii / t_i, averaged over classes present in the target."""
    cm = np.asarray(cm, dtype=np.float64)
    accuracies = []
    for i in range(cm.shape[0]):
        total = cm[i].sum()
        if total > 0:
            accuracies.append(cm[i, i] / total)
    return float(sum(accuracies) / len(accuracies))
''',
    "mean_iou": '''def mean_iou(cm):
    """IoU per class, averaged over classes present in the target or the prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    ious = []
    for i in range(cm.shape[0]):
        union = cm[i, :].sum() + cm[:, i].sum() - cm[i, i]
        if union > 0:
            ious.append(cm[i, i] / union)
    return float(np.mean(ious))
''',
    "frequency_weighted_iou": '''def frequency_weighted_iou(cm):
    """IoU per class weighted by the class frequency in the target."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    score = 0.0
    for i in range(cm.shape[0]):
        union = cm[i, :].sum() + cm[:, i].sum() - cm[i, i]
        if union > 0:
            score += cm[i, :].sum() / total * cm[i, i] / union
    return float(score)
''',
    "dice_coefficient": '''def dice_coefficient(pred_mask, target_mask):
    """2|A and B| / (|A| + |B|), and 1.0 for two empty masks."""
    a = np.asarray(pred_mask).astype(bool)
    b = np.asarray(target_mask).astype(bool)
    first = set(zip(*np.nonzero(a)))
    second = set(zip(*np.nonzero(b)))
    if not first and not second:
        return 1.0
    return 2 * len(first & second) / (len(first) + len(second))
''',
}

METRICS_B = {
    "confusion_matrix": '''def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """cm[i, j] = number of pixels of target class i predicted as class j."""
    pred = np.asarray(pred).astype(np.int64).ravel()
    target = np.asarray(target).astype(np.int64).ravel()
    valid = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (target[valid], pred[valid]), 1)
    return cm
''',
    "pixel_accuracy": '''def pixel_accuracy(cm):
    """Fraction of all counted pixels that are classified correctly."""
    cm = np.asarray(cm, dtype=np.float64)
    return float((cm * np.eye(cm.shape[0])).sum() / cm.sum())
''',
    "mean_accuracy": '''def mean_accuracy(cm):
    """Per-class accuracy n_ii / t_i, averaged over classes present in the target."""
    cm = np.asarray(cm, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diagonal(cm) / cm.sum(axis=1)   # NaN for a class absent from the target
    return float(np.nanmean(per_class))
''',
    "mean_iou": '''def mean_iou(cm):
    """IoU per class, averaged over classes present in the target or the prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
    return float(np.nanmean(iou))
''',
    "frequency_weighted_iou": '''def frequency_weighted_iou(cm):
    """IoU per class weighted by the class frequency in the target."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    frequency = cm.sum(axis=1) / cm.sum()
    return float(np.dot(frequency, iou))
''',
    "dice_coefficient": '''def dice_coefficient(pred_mask, target_mask):
    """2|A and B| / (|A| + |B|), and 1.0 for two empty masks."""
    a = np.asarray(pred_mask).astype(bool)
    b = np.asarray(target_mask).astype(bool)
    tp = np.count_nonzero(a & b)
    fp = np.count_nonzero(a & ~b)
    fn = np.count_nonzero(~a & b)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
''',
}

# ----------------------------------------------------------------------------- 01 thresholding

THRESHOLDING_A = {
    "threshold": '''def threshold(img, t):
    """Foreground where the intensity is strictly above t."""
    img = np.asarray(img, dtype=float)
    return ~(img <= t)
''',
    "otsu_threshold": '''def otsu_threshold(img, nbins=256):
    """The bin centre that maximises the between-class variance of the histogram."""
    img = np.asarray(img, dtype=float)
    counts, edges = np.histogram(img, bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    p = counts / counts.sum()
    total_mean = float(np.sum(p * centres))
    best, best_k = -1.0, 0
    w0 = m0_sum = 0.0
    for k in range(nbins - 1):          # split after bin k
        w0 += p[k]
        m0_sum += p[k] * centres[k]
        w1 = 1.0 - w0
        if counts[:k + 1].sum() == 0 or counts[k + 1:].sum() == 0:
            continue
        mu0 = m0_sum / w0
        mu1 = (total_mean - m0_sum) / w1
        between = w0 * w1 * (mu0 - mu1) ** 2
        if between > best:
            best, best_k = between, k
    return float(centres[best_k])
''',
    "adaptive_threshold": '''def adaptive_threshold(img, block_size, offset=0, method="mean"):
    """Foreground where the pixel is above its local mean (or Gaussian mean) minus offset."""
    img = np.asarray(img, dtype=float)
    h, w = img.shape
    if method == "mean":
        r = block_size // 2
        padded = np.pad(img, r, mode="symmetric")
        integral = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
        integral[1:, 1:] = padded.cumsum(axis=0).cumsum(axis=1)
        b = block_size
        local = (integral[b:b + h, b:b + w] - integral[:h, b:b + w] - integral[b:b + h, :w]
                 + integral[:h, :w]) / b ** 2
    elif method == "gaussian":
        sigma = (block_size - 1) / 6
        radius = int(4 * sigma + 0.5)
        x = np.arange(-radius, radius + 1)
        weights = np.exp(-x ** 2 / (2 * sigma ** 2))
        weights = weights / weights.sum()
        padded = np.pad(img, radius, mode="symmetric")
        rows = sum(wt * padded[i:i + h, :] for i, wt in enumerate(weights))
        local = sum(wt * rows[:, i:i + w] for i, wt in enumerate(weights))
    else:
        raise ValueError(method)
    return img > local - offset
''',
}

THRESHOLDING_B = {
    "threshold": '''def threshold(img, t):
    """Foreground where the intensity is strictly above t."""
    img = np.asarray(img, dtype=float)
    return np.greater(img - t, 0)
''',
    "otsu_threshold": '''def otsu_threshold(img, nbins=256):
    """The bin centre that maximises the between-class variance of the histogram."""
    img = np.asarray(img, dtype=float)
    counts, edges = np.histogram(img.ravel(), bins=nbins)
    centres = edges[:-1] + np.diff(edges) / 2
    p = counts / img.size
    omega = np.cumsum(p)[:-1]                 # weight of class 0 after a split at bin k
    mu = np.cumsum(p * centres)[:-1]          # its first moment
    mu_total = mu[-1] + p[-1] * centres[-1]
    # Otsu's paper: sigma_B^2 = (mu_T omega - mu)^2 / (omega (1 - omega))
    valid = (np.cumsum(counts)[:-1] > 0) & (np.cumsum(counts[::-1])[::-1][1:] > 0)
    sigma_b = np.full(omega.shape, -np.inf)
    sigma_b[valid] = (mu_total * omega[valid] - mu[valid]) ** 2 / (omega[valid] * (1 - omega[valid]))
    return float(centres[int(np.argmax(sigma_b))])
''',
    "adaptive_threshold": '''def adaptive_threshold(img, block_size, offset=0, method="mean"):
    """Foreground where the pixel is above its local mean (or Gaussian mean) minus offset."""
    img = np.asarray(img, dtype=float)
    if method == "mean":
        kernel = np.full((block_size, block_size), 1.0 / block_size ** 2)
    elif method == "gaussian":
        sigma = (block_size - 1) / 6
        radius = int(4 * sigma + 0.5)
        x = np.arange(-radius, radius + 1)
        profile = np.exp(-0.5 * (x / sigma) ** 2)
        kernel = np.outer(profile, profile) / profile.sum() ** 2
    else:
        raise ValueError(method)
    local = ndi.correlate(img, kernel, mode="reflect")
    return img - local + offset > 0
''',
}

# ----------------------------------------------------------------------------- 02 edges

EDGES_A = {
    "convolve2d": '''def convolve2d(img, kernel):
    """Same-size 2-D convolution with reflected (symmetric) borders; kernels of odd size."""
    img = np.asarray(img, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    padded = np.pad(img, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw))
    return np.einsum("ijuv,uv->ij", windows, kernel[::-1, ::-1])
''',
    "sobel": '''def sobel(img):
    """Sobel derivatives (gx along columns, gy along rows), reflected borders."""
    img = np.asarray(img, dtype=float)
    p = np.pad(img, 1, mode="symmetric")
    right = p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]
    left = p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2]
    below = p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]
    above = p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:]
    return right - left, below - above
''',
    "gradient_magnitude": '''def gradient_magnitude(gx, gy):
    """G = sqrt(gx^2 + gy^2), pixel by pixel."""
    gx = np.asarray(gx, dtype=float)
    gy = np.asarray(gy, dtype=float)
    return np.hypot(gx, gy)
''',
    "non_maximum_suppression": '''def non_maximum_suppression(magnitude, direction):
    """Keep pixels that are >= both neighbours along the quantised gradient direction."""
    magnitude = np.asarray(magnitude, dtype=float)
    direction = np.asarray(direction, dtype=float)
    angle = np.degrees(direction) % 180.0
    bins = (np.floor((angle + 22.5) / 45.0).astype(int) % 4) * 45
    p = np.pad(magnitude, 1)
    h, w = magnitude.shape

    def shifted(dr, dc):
        return p[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]

    keep = np.zeros((h, w), dtype=bool)
    for angle_bin, (a, b) in {0: ((0, -1), (0, 1)), 45: ((-1, -1), (1, 1)),
                              90: ((-1, 0), (1, 0)), 135: ((-1, 1), (1, -1))}.items():
        keep |= (bins == angle_bin) & (magnitude >= shifted(*a)) & (magnitude >= shifted(*b))
    keep[0, :] = keep[-1, :] = False
    keep[:, 0] = keep[:, -1] = False
    return np.where(keep, magnitude, 0.0)
''',
}

EDGES_B = {
    "convolve2d": '''def convolve2d(img, kernel):
    """Same-size 2-D convolution with reflected (symmetric) borders; kernels of odd size."""
    img = np.asarray(img, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    a, b = kh // 2, kw // 2
    h, w = img.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            total = 0.0
            for u in range(-a, a + 1):
                for v in range(-b, b + 1):
                    r, c = i - u, j - v          # convolution: the image index runs backwards
                    r = -r - 1 if r < 0 else (2 * h - r - 1 if r >= h else r)
                    c = -c - 1 if c < 0 else (2 * w - c - 1 if c >= w else c)
                    total += kernel[u + a, v + b] * img[r, c]
            out[i, j] = total
    return out
''',
    "sobel": '''def sobel(img):
    """Sobel derivatives (gx along columns, gy along rows), reflected borders."""
    img = np.asarray(img, dtype=float)
    p = np.pad(img, 1, mode="symmetric")
    smooth_rows = p[:-2, :] + 2 * p[1:-1, :] + p[2:, :]     # [1, 2, 1] down the rows
    smooth_cols = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]     # [1, 2, 1] along the columns
    gx = smooth_rows[:, 2:] - smooth_rows[:, :-2]
    gy = smooth_cols[2:, :] - smooth_cols[:-2, :]
    return gx, gy
''',
    "gradient_magnitude": '''def gradient_magnitude(gx, gy):
    """G = sqrt(gx^2 + gy^2), pixel by pixel."""
    gx = np.asarray(gx, dtype=float)
    gy = np.asarray(gy, dtype=float)
    return (gx * gx + gy * gy) ** 0.5
''',
    "non_maximum_suppression": '''def non_maximum_suppression(magnitude, direction):
    """Keep pixels that are >= both neighbours along the quantised gradient direction."""
    magnitude = np.asarray(magnitude, dtype=float)
    direction = np.asarray(direction, dtype=float)
    h, w = magnitude.shape
    out = np.zeros((h, w))
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            d = np.degrees(direction[r, c]) % 180.0
            if 22.5 <= d < 67.5:
                first, second = magnitude[r - 1, c - 1], magnitude[r + 1, c + 1]
            elif 67.5 <= d < 112.5:
                first, second = magnitude[r - 1, c], magnitude[r + 1, c]
            elif 112.5 <= d < 157.5:
                first, second = magnitude[r - 1, c + 1], magnitude[r + 1, c - 1]
            else:
                first, second = magnitude[r, c - 1], magnitude[r, c + 1]
            if magnitude[r, c] >= max(first, second):
                out[r, c] = magnitude[r, c]
    return out
''',
}

# ----------------------------------------------------------------------------- 03 regions

REGIONS_A = {
    "region_grow": '''def region_grow(img, seed, threshold, connectivity=4):
    """Breadth-first region growing with the running-mean criterion |I(p) - mean| < threshold."""
    img = np.asarray(img, dtype=float)
    if connectivity == 4:
        steps = [(-1, 0), (0, -1), (0, 1), (1, 0)]
    else:
        steps = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    seed = tuple(int(v) for v in seed)
    inside = {seed}
    values = [img[seed]]
    queue = [seed]
    head = 0
    while head < len(queue):
        r, c = queue[head]
        head += 1
        for dr, dc in steps:
            p = (r + dr, c + dc)
            if p in inside or not (0 <= p[0] < img.shape[0] and 0 <= p[1] < img.shape[1]):
                continue
            if abs(img[p] - np.sum(values) / len(values)) < threshold:
                inside.add(p)
                values.append(img[p])
                queue.append(p)
    mask = np.zeros(img.shape, dtype=bool)
    mask[tuple(np.array(sorted(inside)).T)] = True
    return mask
''',
    "kmeans_segment": '''def kmeans_segment(img, k, init, max_iter=100):
    """Lloyd's k-means on pixel colours from the given centres; clusters numbered by brightness."""
    img = np.asarray(img, dtype=float)
    h, w = img.shape[:2]
    pixels = img.reshape(h * w, -1)
    centres = np.array(init, dtype=float).reshape(k, -1)
    previous = None
    for _ in range(max_iter):
        distances = np.empty((pixels.shape[0], k))
        for j in range(k):
            distances[:, j] = np.sum((pixels - centres[j]) ** 2, axis=1)
        labels = distances.argmin(axis=1)
        if previous is not None and (labels == previous).all():
            break
        previous = labels
        for j in range(k):
            centres[j] = pixels[labels == j].mean(axis=0)
    order = sorted(range(k), key=lambda j: centres[j].mean())
    new_label = {old: new for new, old in enumerate(order)}
    relabelled = np.array([new_label[j] for j in labels]).reshape(h, w)
    return relabelled, centres[order]
''',
}

REGIONS_B = {
    "region_grow": '''def region_grow(img, seed, threshold, connectivity=4):
    """Breadth-first region growing with the running-mean criterion |I(p) - mean| < threshold."""
    img = np.asarray(img, dtype=float)
    four = [(-1, 0), (0, -1), (0, 1), (1, 0)]
    eight = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    neighbours = four if connectivity == 4 else eight
    height, width = img.shape
    grown = np.zeros((height, width), dtype=bool)
    r0, c0 = seed
    grown[r0, c0] = True
    members = [img[r0, c0]]
    todo = deque()
    todo.append((r0, c0))
    while len(todo) > 0:
        r, c = todo.popleft()
        for dr, dc in neighbours:
            nr, nc = r + dr, c + dc
            if nr < 0 or nc < 0 or nr >= height or nc >= width or grown[nr, nc]:
                continue
            mean = sum(members) / len(members)
            if -threshold < img[nr, nc] - mean < threshold:
                grown[nr, nc] = True
                members.append(img[nr, nc])
                todo.append((nr, nc))
    return grown
''',
    "kmeans_segment": '''def kmeans_segment(img, k, init, max_iter=100):
    """Lloyd's k-means on pixel colours from the given centres; clusters numbered by brightness."""
    img = np.asarray(img, dtype=float)
    pixels = img.reshape(-1, img.shape[2] if img.ndim == 3 else 1)
    centres = np.asarray(init, dtype=float).reshape(k, pixels.shape[1])
    labels = np.full(pixels.shape[0], -1)
    for _ in range(max_iter):
        new = np.argmin(np.linalg.norm(pixels[:, None, :] - centres[None, :, :], axis=2) ** 2, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, pixels)
        centres = sums / np.bincount(labels, minlength=k)[:, None]
    rank = np.argsort(np.argsort(centres.mean(axis=1), kind="stable"), kind="stable")
    return rank[labels].reshape(img.shape[:2]), centres[np.argsort(centres.mean(axis=1), kind="stable")]
''',
}

# ----------------------------------------------------------------------------- 04 transpose convolution

STRIDE2 = [[1, 0, 1, 0, -2], [0, 1, 0, -1, 0], [5, 0, 5, 0, 5], [0, 2, 0, 3, 0], [6, 0, 11, 0, 3]]

TRANSPOSE_A = {
    "conv_output_size": '''def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one axis."""
    import math
    return math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1
''',
    "conv_transpose_output_size": '''def conv_transpose_output_size(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of a transpose convolution along one axis."""
    return stride * n - stride + dilation * k - dilation - 2 * padding + output_padding + 1
''',
    "conv_transpose2d": '''def conv_transpose2d(x, kernel, stride=1, padding=0, output_padding=0):
    """Single-channel transpose convolution: scatter kernel * x[i, j] at stride steps, sum, crop."""
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    h, w = x.shape
    kh, kw = kernel.shape
    out = np.zeros(((h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding))
    for u in range(kh):                 # one kernel tap at a time: it meets every input element
        for v in range(kw):
            out[u:u + (h - 1) * stride + 1:stride, v:v + (w - 1) * stride + 1:stride] += kernel[u, v] * x
    return out[padding:out.shape[0] - padding, padding:out.shape[1] - padding]
''',
    "stride2_example": "def stride2_example():\n"
                       "    \"\"\"The 5x5 result of the transpose convolution above, typed in by hand.\"\"\"\n"
                       f"    return np.array({STRIDE2})\n",
}

TRANSPOSE_B = {
    "conv_output_size": '''def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one axis."""
    span = dilation * (k - 1) + 1        # the dilated kernel's extent
    count, start = 0, 0
    while start + span <= n + 2 * padding:
        count += 1
        start += stride
    return count
''',
    "conv_transpose_output_size": '''def conv_transpose_output_size(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of a transpose convolution along one axis."""
    last = 0
    for i in range(n):                   # where the dilated kernel placed at input i ends
        last = max(last, i * stride + dilation * (k - 1) + 1)
    return last - 2 * padding + output_padding
''',
    "conv_transpose2d": '''def conv_transpose2d(x, kernel, stride=1, padding=0, output_padding=0):
    """Single-channel transpose convolution: scatter kernel * x[i, j] at stride steps, sum, crop."""
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    h, w = x.shape
    kh, kw = kernel.shape
    # the equivalent direct convolution: zeros between the inputs, a border of k - 1, the kernel flipped
    spread = np.zeros(((h - 1) * stride + 1, (w - 1) * stride + 1))
    spread[::stride, ::stride] = x
    padded = np.pad(spread, ((kh - 1, kh - 1 + output_padding), (kw - 1, kw - 1 + output_padding)))
    flipped = kernel[::-1, ::-1]
    rows, cols = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    full = np.array([[np.sum(padded[i:i + kh, j:j + kw] * flipped) for j in range(cols)] for i in range(rows)])
    return full[padding:rows - padding, padding:cols - padding]
''',
    "stride2_example": '''def stride2_example():
    """The 5x5 result of the transpose convolution above, typed in by hand."""
    result = np.zeros((5, 5))
    result[0] = [1, 0, 1, 0, -2]
    result[1, 1], result[1, 3] = 1, -1
    result[2, ::2] = 5
    result[3, 1], result[3, 3] = 2, 3
    result[4] = [6, 0, 11, 0, 3]
    return result
''',
}

# ----------------------------------------------------------------------------- 05 FCN

FCN_A = {
    "linear_to_conv_weight": '''def linear_to_conv_weight(weight, in_channels, height, width):
    """The (M, C, h, w) Conv2d kernel holding the (M, C*h*w) weight of a Linear layer."""
    weight = torch.as_tensor(weight)
    return weight.unflatten(1, (in_channels, height, width))
''',
    "bilinear_kernel": '''def bilinear_kernel(in_ch, out_ch, k):
    """ConvTranspose2d weight (in_ch, out_ch, k, k) that upsamples each channel bilinearly."""
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    rows, cols = np.ogrid[:k, :k]
    filt = (1 - abs(rows - centre) / factor) * (1 - abs(cols - centre) / factor)
    weight = np.zeros((in_ch, out_ch, k, k), dtype=np.float32)
    channels = range(min(in_ch, out_ch))
    weight[channels, channels] = filt
    return torch.from_numpy(weight)
''',
    "fcn8s_fuse": '''def fcn8s_fuse(score32, score16, score8, upscore2, upscore_pool4, upscore):
    """FCN-8s: upsample x2 and add pool4 scores, upsample x2 and add pool3 scores, upsample x8."""
    return upscore(upscore_pool4(upscore2(score32) + score16) + score8)
''',
}

FCN_B = {
    "linear_to_conv_weight": '''def linear_to_conv_weight(weight, in_channels, height, width):
    """The (M, C, h, w) Conv2d kernel holding the (M, C*h*w) weight of a Linear layer."""
    weight = torch.as_tensor(weight)
    return torch.stack([row.view(in_channels, height, width) for row in weight.contiguous()])
''',
    "bilinear_kernel": '''def bilinear_kernel(in_ch, out_ch, k):
    """ConvTranspose2d weight (in_ch, out_ch, k, k) that upsamples each channel bilinearly."""
    import math
    f = math.ceil(k / 2)                       # the upsampling factor
    centre = (k - 1) / 2                       # the middle of the kernel, for odd and even k alike
    weight = torch.zeros(in_ch, out_ch, k, k)
    for i in range(k):
        for j in range(k):
            value = (1 - abs(i - centre) / f) * (1 - abs(j - centre) / f)
            for channel in range(min(in_ch, out_ch)):
                weight[channel, channel, i, j] = value
    return weight
''',
    "fcn8s_fuse": '''def fcn8s_fuse(score32, score16, score8, upscore2, upscore_pool4, upscore):
    """FCN-8s: upsample x2 and add pool4 scores, upsample x2 and add pool3 scores, upsample x8."""
    pool4_fused = torch.add(score16, upscore2(score32))
    pool3_fused = torch.add(score8, upscore_pool4(pool4_fused))
    return upscore(pool3_fused)
''',
}

# ----------------------------------------------------------------------------- 11 COCO

COCO_A = {
    "class_frequency": '''def class_frequency(coco):
    """Objects (non-crowd annotations) per category, in ascending category id."""
    from collections import Counter
    counts = Counter(a["category_id"] for a in coco.loadAnns(coco.getAnnIds()) if not a["iscrowd"])
    return np.array([counts[c] for c in sorted(coco.getCatIds())], dtype=np.int64)
''',
    "instances_per_image": '''def instances_per_image(coco):
    """Objects per image, in ascending image id."""
    from collections import Counter
    counts = Counter(a["image_id"] for a in coco.dataset["annotations"] if not a["iscrowd"])
    return np.array([counts[i] for i in sorted(coco.imgs)], dtype=np.int64)
''',
    "size_class_counts": '''def size_class_counts(coco):
    """[small, medium, large] object counts by COCO's area thresholds."""
    small = medium = large = 0
    for a in coco.dataset["annotations"]:
        if a["iscrowd"]:
            continue
        if a["area"] < 32 * 32:
            small += 1
        elif a["area"] < 96 * 96:
            medium += 1
        else:
            large += 1
    return np.array([small, medium, large])
''',
    "cooccurrence_matrix": '''def cooccurrence_matrix(coco):
    """Images holding both categories a and b, for every pair, in ascending category id."""
    cats = sorted(coco.getCatIds())
    images = sorted(coco.getImgIds())
    present = np.zeros((len(images), len(cats)), dtype=np.int64)
    for a in coco.dataset["annotations"]:
        if not a["iscrowd"]:
            present[images.index(a["image_id"]), cats.index(a["category_id"])] = 1
    return present.T @ present
''',
    "crowd_counts": '''def crowd_counts(coco):
    """Crowd annotations per category, in ascending category id."""
    from collections import Counter
    counts = Counter(a["category_id"] for a in coco.dataset["annotations"] if a["iscrowd"])
    return np.array([counts[c] for c in sorted(coco.getCatIds())], dtype=np.int64)
''',
    "label_map": '''def label_map(coco, image_id, size):
    """Semantic label map (0 background, k+1 category, 255 crowd) resized to size by nearest neighbour."""
    cats = sorted(coco.getCatIds())
    info = coco.loadImgs([image_id])[0]
    h, w = info["height"], info["width"]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    objects = [a for a in anns if not a["iscrowd"]]
    areas = np.array([a["area"] for a in objects], dtype=float)
    labels = np.zeros((h, w), dtype=np.int64)
    for index in np.argsort(-areas, kind="stable"):          # largest first: smaller ones stay on top
        labels[coco.annToMask(objects[index]) == 1] = cats.index(objects[index]["category_id"]) + 1
    crowd = np.zeros((h, w), dtype=bool)
    for a in anns:
        if a["iscrowd"]:
            crowd |= coco.annToMask(a) == 1
    labels[crowd & (labels == 0)] = 255
    rows = np.clip(np.floor((np.arange(size[0]) + 0.5) / size[0] * h).astype(int), 0, h - 1)
    cols = np.clip(np.floor((np.arange(size[1]) + 0.5) / size[1] * w).astype(int), 0, w - 1)
    return labels[np.ix_(rows, cols)]
''',
}

COCO_B = {
    "class_frequency": '''def class_frequency(coco):
    """Objects (non-crowd annotations) per category, in ascending category id."""
    cats = np.array(sorted(coco.getCatIds()))
    ids = np.array([a["category_id"] for a in coco.dataset["annotations"] if a["iscrowd"] == 0], dtype=np.int64)
    return np.bincount(np.searchsorted(cats, ids), minlength=len(cats)).astype(np.int64)
''',
    "instances_per_image": '''def instances_per_image(coco):
    """Objects per image, in ascending image id."""
    result = []
    for image_id in sorted(coco.getImgIds()):
        result.append(sum(1 for a in coco.imgToAnns[image_id] if a["iscrowd"] == 0))
    return np.array(result, dtype=np.int64)
''',
    "size_class_counts": '''def size_class_counts(coco):
    """[small, medium, large] object counts by COCO's area thresholds."""
    areas = [a["area"] for a in coco.dataset["annotations"] if a["iscrowd"] == 0]
    classes = np.digitize(areas, [32 ** 2, 96 ** 2])   # 0: < 1024, 1: 1024 .. 9216, 2: >= 9216
    return np.bincount(classes, minlength=3)
''',
    "cooccurrence_matrix": '''def cooccurrence_matrix(coco):
    """Images holding both categories a and b, for every pair, in ascending category id."""
    cats = sorted(coco.getCatIds())
    position = {c: i for i, c in enumerate(cats)}
    matrix = np.zeros((len(cats), len(cats)), dtype=np.int64)
    for image_id in coco.getImgIds():
        here = {position[a["category_id"]] for a in coco.imgToAnns[image_id] if a["iscrowd"] == 0}
        for a in here:
            for b in here:
                matrix[a, b] += 1
    return matrix
''',
    "crowd_counts": '''def crowd_counts(coco):
    """Crowd annotations per category, in ascending category id."""
    return np.array([sum(1 for a in coco.dataset["annotations"] if a["category_id"] == c and a["iscrowd"])
                     for c in sorted(coco.getCatIds())], dtype=np.int64)
''',
    "label_map": '''def label_map(coco, image_id, size):
    """Semantic label map (0 background, k+1 category, 255 crowd) resized to size by nearest neighbour."""
    label_of = {c: i + 1 for i, c in enumerate(sorted(coco.getCatIds()))}
    height, width = coco.imgs[image_id]["height"], coco.imgs[image_id]["width"]
    anns = coco.imgToAnns[image_id]
    full = np.zeros((height, width), dtype=np.int64)
    objects = np.zeros((height, width), dtype=bool)
    for a in sorted((a for a in anns if a["iscrowd"] == 0), key=lambda a: a["area"], reverse=True):
        mask = coco.annToMask(a).astype(bool)
        full[mask] = label_of[a["category_id"]]
        objects |= mask
    for a in (a for a in anns if a["iscrowd"] == 1):
        full[coco.annToMask(a).astype(bool) & ~objects] = 255
    out = np.zeros(tuple(size), dtype=np.int64)
    for i in range(size[0]):
        for j in range(size[1]):
            y = min(int((i + 0.5) * height / size[0]), height - 1)
            x = min(int((j + 0.5) * width / size[1]), width - 1)
            out[i, j] = full[y, x]
    return out
''',
}

# ----------------------------------------------------------------------------- 06 U-Net

UNET_A = {
    "center_crop": '''def center_crop(x, size):
    """The centre (h, w) window of x, a tensor of shape (..., H, W)."""
    if isinstance(size, int):
        size = (size, size)
    rows, cols = x.shape[-2:]
    starts = [round((n - k) / 2) for n, k in zip((rows, cols), size)]   # Python's round: halves to even
    return x[..., starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1]]
''',
    "unet_weight_map": '''def unet_weight_map(instance_labels, w0=10.0, sigma=5.0):
    """U-Net's weight map: balanced class weights plus w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on the background."""
    labels = np.asarray(instance_labels)
    height, width = labels.shape
    total = labels.size
    n_objects = np.count_nonzero(labels)
    if n_objects in (0, total):
        weights = np.ones((height, width))
    else:
        weights = np.where(labels > 0, total / (2 * n_objects), total / (2 * (total - n_objects)))
    ids = [k for k in np.unique(labels) if k != 0]
    if len(ids) < 2:
        return weights.astype(np.float64)
    points = {k: np.argwhere(labels == k) for k in ids}   # brute force: every pixel of every object
    for r in range(height):
        for c in range(width):
            if labels[r, c] != 0:
                continue
            nearest = sorted(np.sqrt(((p - (r, c)) ** 2).sum(axis=1)).min() for p in points.values())
            weights[r, c] += w0 * np.exp(-(nearest[0] + nearest[1]) ** 2 / (2 * sigma ** 2))
    return weights.astype(np.float64)
''',
    "dice_loss": '''def dice_loss(logits, target, smooth=1.0):
    """Mean over the samples of 1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s), with p = sigmoid(logits)."""
    losses = []
    for z, y in zip(logits, target):
        p = 1 / (1 + torch.exp(-z))
        y = y.float()
        losses.append(1 - (2 * torch.sum(y * p) + smooth) / (torch.sum(y) + torch.sum(p) + smooth))
    return torch.stack(losses).mean()
''',
    "focal_loss": '''def focal_loss(logits, target, alpha=0.25, gamma=2.0):
    """Mean over pixels of -alpha_t (1 - p_t)^gamma log(p_t), with p = sigmoid(logits)."""
    p = torch.sigmoid(logits)
    positive = target == 1
    p_t = torch.where(positive, p, 1 - p)
    alpha_t = torch.where(positive, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
    log_p_t = torch.where(positive, F.logsigmoid(logits), F.logsigmoid(-logits))
    return torch.mean(-alpha_t * (1 - p_t).pow(gamma) * log_p_t)
''',
}

UNET_B = {
    "center_crop": '''def center_crop(x, size):
    """The centre (h, w) window of x, a tensor of shape (..., H, W)."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    H, W = x.shape[-2], x.shape[-1]

    def start(margin):
        half, odd = divmod(margin, 2)         # margin / 2 = half + odd / 2
        return half + (odd and half % 2)      # a half rounds to the even neighbour, as round() does

    top, left = start(H - h), start(W - w)
    return x.narrow(-2, top, h).narrow(-1, left, w)
''',
    "unet_weight_map": '''def unet_weight_map(instance_labels, w0=10.0, sigma=5.0):
    """U-Net's weight map: balanced class weights plus w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on the background."""
    labels = np.asarray(instance_labels).astype(np.int64)
    background = labels == 0
    n = labels.size
    counts = {True: int(background.sum()), False: int((~background).sum())}
    if min(counts.values()) == 0:
        class_weight = np.ones(labels.shape)
    else:
        class_weight = np.where(background, n / (2.0 * counts[True]), n / (2.0 * counts[False]))
    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    for k in np.unique(labels[~background]):
        d = ndimage.distance_transform_edt(labels != k)
        d2 = np.where(d < d1, d1, np.minimum(d2, d))
        d1 = np.minimum(d1, d)
    with np.errstate(invalid="ignore", over="ignore"):
        border = np.where(np.isfinite(d2) & background, w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma ** 2)), 0.0)
    return class_weight + border
''',
    "dice_loss": '''def dice_loss(logits, target, smooth=1.0):
    """Mean over the samples of 1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s), with p = sigmoid(logits)."""
    n = logits.shape[0]
    p = torch.sigmoid(logits).reshape(n, -1)
    y = target.reshape(n, -1).type_as(p)
    numerator = 2 * torch.einsum("ni,ni->n", p, y) + smooth
    denominator = p.sum(-1) + y.sum(-1) + smooth
    return torch.mean(1 - numerator / denominator)
''',
    "focal_loss": '''def focal_loss(logits, target, alpha=0.25, gamma=2.0):
    """Mean over pixels of -alpha_t (1 - p_t)^gamma log(p_t), with p = sigmoid(logits)."""
    y = target.float()
    p = torch.sigmoid(logits)
    loss_positive = -alpha * (1 - p) ** gamma * F.logsigmoid(logits)
    loss_negative = -(1 - alpha) * p ** gamma * F.logsigmoid(-logits)
    return (y * loss_positive + (1 - y) * loss_negative).sum() / y.numel()
''',
}

# ----------------------------------------------------------------------------- 07 SegNet

SEGNET_A = {
    "max_unpool2d": '''def max_unpool2d(x, indices, kernel_size, stride=None, output_size=None):
    """Put each value of x at the position indices names in its (H, W) plane; zeros elsewhere."""
    if stride is None:
        stride = kernel_size
    n, c, h, w = x.shape
    if output_size is not None:
        H, W = output_size[-2:]
    else:
        H, W = (h - 1) * stride + kernel_size, (w - 1) * stride + kernel_size
    out = x.new_zeros((n, c, H, W))
    for b in range(n):
        for ch in range(c):
            for r in range(h):
                for q in range(w):
                    index = int(indices[b, ch, r, q])
                    out[b, ch, index // W, index % W] = x[b, ch, r, q]
    return out
''',
    "segnet_decoder_stage": '''def segnet_decoder_stage(x, indices, output_size, convs, norms):
    """Unpool x with the encoder's indices to output_size, then conv -> batch norm -> ReLU per layer."""
    y = max_unpool2d(x, indices, 2, output_size=output_size)
    for conv, norm in zip(convs, norms):
        z = conv(y)
        shape = (1, -1, 1, 1)
        scale = norm["weight"].reshape(shape) / torch.sqrt(norm["running_var"].reshape(shape) + 1e-5)
        z = (z - norm["running_mean"].reshape(shape)) * scale + norm["bias"].reshape(shape)
        y = torch.clamp(z, min=0)
    return y
''',
}

SEGNET_B = {
    "max_unpool2d": '''def max_unpool2d(x, indices, kernel_size, stride=None, output_size=None):
    """Put each value of x at the position indices names in its (H, W) plane; zeros elsewhere."""
    s = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    size = output_size if output_size is not None else ((h - 1) * s + kernel_size, (w - 1) * s + kernel_size)
    H, W = int(size[-2]), int(size[-1])
    flat = torch.zeros(n * c * H * W, dtype=x.dtype)
    offsets = (torch.arange(n * c) * H * W).reshape(n, c, 1, 1)   # where each (sample, channel) plane starts
    flat[(indices + offsets).flatten()] = x.flatten()
    return flat.view(n, c, H, W)
''',
    "segnet_decoder_stage": '''def segnet_decoder_stage(x, indices, output_size, convs, norms):
    """Unpool x with the encoder's indices to output_size, then conv -> batch norm -> ReLU per layer."""
    y = max_unpool2d(x, indices, kernel_size=2, stride=2, output_size=tuple(output_size))
    for k in range(len(convs)):
        conv, stats = convs[k], norms[k]
        y = F.conv2d(y, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding)
        mean = stats["running_mean"][None, :, None, None]
        std = (stats["running_var"][None, :, None, None] + 1e-5).sqrt()
        y = torch.relu(stats["weight"][None, :, None, None] * (y - mean) / std + stats["bias"][None, :, None, None])
    return y
''',
}

# ----------------------------------------------------------------------------- 08 DeepLab

CHANNEL_CHECK = '''    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"dilated_conv2d: x has {x.shape[1]} channels, but weight of shape "
                         f"{tuple(weight.shape)} expects {weight.shape[1]}.")
'''

DEEPLAB_A = {
    "dilated_conv2d": '''def dilated_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """F.conv2d(x, weight, bias, stride, padding, dilation) for int stride, padding and dilation."""
''' + CHANNEL_CHECK + '''    n, c, H, W = x.shape
    o, _, kh, kw = weight.shape
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    xp = x.new_zeros((n, c, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    rows = (xp.shape[2] - span_h) // stride + 1
    cols = (xp.shape[3] - span_w) // stride + 1
    y = x.new_zeros((n, o, rows, cols))
    for r in range(rows):
        for q in range(cols):
            window = xp[:, :, r * stride:r * stride + span_h:dilation, q * stride:q * stride + span_w:dilation]
            y[:, :, r, q] = torch.einsum("nckl,ockl->no", window, weight)
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y
''',
    "receptive_field": '''def receptive_field(layers):
    """(size, jump): r = 1 + sum over layers of (k - 1) d times the product of the strides before it."""
    import math

    layers = [tuple(layer) for layer in layers]
    strides = [s for _, s, _ in layers]
    size = 1 + sum((k - 1) * d * math.prod(strides[:l]) for l, (k, _, d) in enumerate(layers))
    return int(size), int(math.prod(strides))
''',
    "aspp": '''def aspp(x, params, rates):
    """ASPP, inference mode: 1x1 conv, a 3x3 atrous conv per rate, image pooling; concatenated and projected."""
    def layer(inputs, p, rate=1):
        k = p["weight"].shape[-1]
        z = dilated_conv2d(inputs, p["weight"], padding=(k - 1) // 2 * rate, dilation=rate)
        bn = p["bn"]
        shape = (1, -1, 1, 1)
        scale = bn["weight"].reshape(shape) / torch.sqrt(bn["running_var"].reshape(shape) + 1e-5)
        return torch.clamp((z - bn["running_mean"].reshape(shape)) * scale + bn["bias"].reshape(shape), min=0)

    size = tuple(x.shape[-2:])
    outs = [layer(x, params["conv1x1"])]
    outs += [layer(x, p, r) for r, p in zip(rates, params["atrous"])]
    image = layer(x.mean(dim=-1, keepdim=True).mean(dim=-2, keepdim=True), params["pooling"])
    outs.append(F.interpolate(image, size=size, mode="bilinear", align_corners=False))
    return layer(torch.cat(outs, 1), params["project"])
''',
}

DEEPLAB_B = {
    "dilated_conv2d": '''def dilated_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Spread the kernel with dilation - 1 zeros between taps, then a plain strided convolution."""
''' + CHANNEL_CHECK + '''    o, c, kh, kw = weight.shape
    spread = torch.zeros(o, c, dilation * (kh - 1) + 1, dilation * (kw - 1) + 1, dtype=weight.dtype)
    spread[:, :, ::dilation, ::dilation] = weight
    p = padding
    xp = F.pad(x, [p, p, p, p])
    K_h, K_w = spread.shape[2:]
    out_h = (xp.shape[2] - K_h) // stride + 1
    out_w = (xp.shape[3] - K_w) // stride + 1
    total = 0
    for i in range(K_h):
        for j in range(K_w):
            patch = xp[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride][:, :, :out_h, :out_w]
            total = total + torch.tensordot(patch, spread[:, :, i, j], dims=([1], [1])).permute(0, 3, 1, 2)
    if bias is not None:
        total = total + bias.view(-1, 1, 1)
    return total.to(x.dtype)
''',
    "receptive_field": '''def receptive_field(layers):
    """Walk back from one output pixel: a layer turns r pixels of its output into s (r - 1) + d (k - 1) + 1 of its input."""
    size, jump = 1, 1
    for k, s, d in reversed(list(layers)):
        size = s * (size - 1) + d * (k - 1) + 1
        jump = jump * s
    return (size, jump)
''',
    "aspp": '''def aspp(x, params, rates):
    """Five branches (1x1, one per rate, image pooling), each conv -> BN -> ReLU, concatenated, projected."""
    def bn_relu(y, bn):
        return F.relu(F.batch_norm(y, bn["running_mean"], bn["running_var"], weight=bn["weight"], bias=bn["bias"],
                                   training=False, momentum=0.0, eps=1e-5))

    h, w = x.shape[2], x.shape[3]
    layers = [(params["conv1x1"], 0, 1)] + [(p, r, r) for p, r in zip(params["atrous"], rates)]
    features = [bn_relu(dilated_conv2d(x, p["weight"], padding=pad, dilation=d), p["bn"]) for p, pad, d in layers]
    pooled = F.adaptive_avg_pool2d(x, 1)
    pooled = bn_relu(dilated_conv2d(pooled, params["pooling"]["weight"]), params["pooling"]["bn"])
    features.append(pooled.repeat(1, 1, h, w))
    stacked = torch.cat(features, dim=1)
    return bn_relu(dilated_conv2d(stacked, params["project"]["weight"]), params["project"]["bn"])
''',
}

# ----------------------------------------------------------------------------- 09 Mask R-CNN

MASK_RCNN_A = {
    "bilinear_interpolate": '''def bilinear_interpolate(feature, y, x):
    """Bilinear sample at (y, x): 0 more than a pixel outside the map, clamped to the edge within it."""
    rows, cols = feature.shape[-2], feature.shape[-1]
    if not (-1.0 <= y <= rows and -1.0 <= x <= cols):
        return 0.0 * feature[..., 0, 0]
    y = min(max(y, 0.0), rows - 1)
    x = min(max(x, 0.0), cols - 1)
    r0, c0 = math.floor(y), math.floor(x)
    r1, c1 = min(r0 + 1, rows - 1), min(c0 + 1, cols - 1)
    dy, dx = y - r0, x - c0
    top = feature[..., r0, c0] * (1 - dx) + feature[..., r0, c1] * dx
    bottom = feature[..., r1, c0] * (1 - dx) + feature[..., r1, c1] * dx
    return top * (1 - dy) + bottom * dy
''',
    "roi_align": '''def roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign: each bin of each box is the mean of a grid of bilinear samples (every channel at once)."""
    ph, pw = output_size
    shift = 0.5 if aligned else 0.0
    result = []
    for row in boxes:
        index = int(row[0].item())
        x1, y1, x2, y2 = (float(v) * spatial_scale - shift for v in row[1:])
        width, height = x2 - x1, y2 - y1
        if not aligned:
            width, height = max(width, 1.0), max(height, 1.0)
        gy = sampling_ratio if sampling_ratio > 0 else int(math.ceil(height / ph))
        gx = sampling_ratio if sampling_ratio > 0 else int(math.ceil(width / pw))
        cells = torch.zeros(features.shape[1], ph, pw, dtype=features.dtype)
        if gy > 0 and gx > 0:
            for i in range(ph):
                for j in range(pw):
                    samples = [bilinear_interpolate(features[index], y1 + (i + (a + 0.5) / gy) * height / ph,
                                                    x1 + (j + (c + 0.5) / gx) * width / pw)
                               for a in range(gy) for c in range(gx)]
                    cells[:, i, j] = torch.stack(samples).mean(dim=0)
        result.append(cells)
    return torch.stack(result)
''',
    "mask_iou": '''def mask_iou(a, b):
    """IoU of every pair (a[i], b[j]), pair by pair; 0 for two empty masks."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float32)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            inter = (a[i] & b[j]).sum().item()
            union = (a[i] | b[j]).sum().item()
            out[i, j] = inter / union if union else 0.0
    return out
''',
}

MASK_RCNN_B = {
    "bilinear_interpolate": '''def bilinear_interpolate(feature, y, x):
    """Mix the four neighbours of (y, x) with the weights (1 - ly)(1 - lx), (1 - ly) lx, ly (1 - lx), ly lx."""
    H, W = feature.shape[-2:]
    if y < -1 or x < -1 or y > H or x > W:
        return torch.zeros_like(feature[..., 0, 0])

    def neighbours(t, n):
        t = min(max(t, 0.0), n - 1.0)
        lo = int(t)
        hi = lo + 1 if lo < n - 1 else lo
        return lo, hi, t - lo

    y0, y1, ly = neighbours(y, H)
    x0, x1, lx = neighbours(x, W)
    corners = torch.stack([feature[..., y0, x0], feature[..., y0, x1], feature[..., y1, x0], feature[..., y1, x1]],
                          dim=-1)
    weights = torch.tensor([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], dtype=feature.dtype)
    return (corners * weights).sum(dim=-1)
''',
    "roi_align": '''def roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision's roi_align, one channel at a time, samples laid out along each axis first."""
    n_rois, channels = boxes.shape[0], features.shape[1]
    pooled_h, pooled_w = output_size
    out = features.new_zeros((n_rois, channels, pooled_h, pooled_w))
    half = 0.5 if aligned else 0.0
    for r in range(n_rois):
        b, x1, y1, x2, y2 = [float(v) for v in boxes[r]]
        left, top = x1 * spatial_scale - half, y1 * spatial_scale - half
        w = x2 * spatial_scale - half - left
        h = y2 * spatial_scale - half - top
        if not aligned:
            w = max(w, 1.0)
            h = max(h, 1.0)
        if sampling_ratio > 0:
            ny = nx = sampling_ratio
        else:
            ny, nx = math.ceil(h / pooled_h), math.ceil(w / pooled_w)
        if ny <= 0 or nx <= 0:
            continue   # a region without samples stays 0
        ys = [top + (k + 0.5) * h / (pooled_h * ny) for k in range(pooled_h * ny)]
        xs = [left + (k + 0.5) * w / (pooled_w * nx) for k in range(pooled_w * nx)]
        for c in range(channels):
            plane = features[int(b), c]
            for i in range(pooled_h):
                for j in range(pooled_w):
                    acc = 0.0
                    for yy in ys[i * ny:(i + 1) * ny]:
                        for xx in xs[j * nx:(j + 1) * nx]:
                            acc += float(bilinear_interpolate(plane, yy, xx))
                    out[r, c, i, j] = acc / (ny * nx)
    return out
''',
    "mask_iou": '''def mask_iou(a, b):
    """|A and B| / |A or B| for every pair by one einsum; an empty union gives 0."""
    fa, fb = a.float(), b.float()
    inter = torch.einsum("nhw,mhw->nm", fa, fb)
    union = fa.sum(dim=(1, 2)).unsqueeze(1) + fb.sum(dim=(1, 2)).unsqueeze(0) - inter
    return torch.where(union > 0, inter / union.clamp(min=1.0), torch.zeros_like(union))
''',
}

# ----------------------------------------------------------------------------- 10 SAM

SAM_A = {
    "fourier_encoding": '''def fourier_encoding(coords, gaussian_matrix):
    \"\"\"Each of the F frequencies by hand: x * G[0, f] + y * G[1, f] on coordinates mapped to [-1, 1].\"\"\"
    x = 2.0 * coords[..., 0] - 1.0
    y = 2.0 * coords[..., 1] - 1.0
    angles = torch.stack([x * gaussian_matrix[0, f] + y * gaussian_matrix[1, f]
                          for f in range(gaussian_matrix.shape[1])], dim=-1) * (2.0 * math.pi)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)
''',
    "attention": '''def attention(q, k, v):
    \"\"\"einsum for the scores, and a softmax written out with the row maximum subtracted.\"\"\"
    d = q.shape[-1]
    scores = torch.einsum("...ld,...sd->...ls", q, k) / d ** 0.5
    scores = scores - scores.max(dim=-1, keepdim=True).values
    weights = scores.exp()
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return torch.einsum("...ls,...sv->...lv", weights, v)
''',
    "focal_loss": '''def focal_loss(logits, target, alpha=0.25, gamma=2.0):
    \"\"\"The two classes written separately, with log-sigmoids for a stable log p_t.\"\"\"
    p = torch.sigmoid(logits)
    positive = -alpha * (1 - p) ** gamma * F.logsigmoid(logits)
    negative = -(1 - alpha) * p ** gamma * F.logsigmoid(-logits)
    return torch.where(target == 1, positive, negative).mean()
''',
    "dice_loss": '''def dice_loss(logits, target, smooth=1.0):
    \"\"\"A loop over the masks.\"\"\"
    losses = []
    for z, y in zip(logits, target):
        p = torch.sigmoid(z)
        losses.append(1 - (2 * (p * y).sum() + smooth) / (p.sum() + y.sum() + smooth))
    return torch.stack(losses).mean()
''',
    "sam_loss": '''def sam_loss(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    \"\"\"Vectorised: focal per mask from the elementwise terms, Dice per mask over the flattened pixels.\"\"\"
    B, M = mask_logits.shape[:2]
    y = target.to(mask_logits.dtype)[:, None].expand_as(mask_logits)
    p = torch.sigmoid(mask_logits)
    ce = F.binary_cross_entropy_with_logits(mask_logits, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    focal = ((0.25 * y + 0.75 * (1 - y)) * (1 - p_t) ** 2 * ce).mean(dim=(2, 3))
    dice = 1 - (2 * (p * y).sum(dim=(2, 3)) + 1) / (p.sum(dim=(2, 3)) + y.sum(dim=(2, 3)) + 1)
    best = (focal_weight * focal + dice_weight * dice).min(dim=1).values
    hard = mask_logits > 0
    truth = y > 0.5
    inter = (hard & truth).sum(dim=(2, 3)).to(iou_pred.dtype)
    union = (hard | truth).sum(dim=(2, 3)).to(iou_pred.dtype)
    iou = torch.where(union == 0, torch.ones_like(union), inter / union.clamp(min=1))
    return (best + ((iou_pred - iou) ** 2).mean(dim=1)).mean()
''',
    "stability_score": '''def stability_score(mask_logits, mask_threshold, threshold_offset):
    \"\"\"Counts over the last two axes, and 1 where both masks are empty.\"\"\"
    high = (mask_logits > mask_threshold + threshold_offset).sum(dim=(-2, -1)).double()
    low = (mask_logits > mask_threshold - threshold_offset).sum(dim=(-2, -1)).double()
    return torch.where(low > 0, high / low.clamp(min=1.0), torch.ones_like(low))
''',
}

SAM_B = {
    "fourier_encoding": '''def fourier_encoding(coords, gaussian_matrix):
    \"\"\"matmul on the flattened points, with the 2 pi folded into the matrix.\"\"\"
    shape = coords.shape[:-1]
    points = (coords.reshape(-1, 2) - 0.5) * 2
    angles = torch.matmul(points, gaussian_matrix * (2 * torch.pi))
    features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return features.reshape(*shape, features.shape[-1])
''',
    "attention": '''def attention(q, k, v):
    \"\"\"matmul and F.softmax, with the scale put on the queries.\"\"\"
    q = q * (1.0 / math.sqrt(q.size(-1)))
    weights = F.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
    return torch.matmul(weights, v)
''',
    "focal_loss": '''def focal_loss(logits, target, alpha=0.25, gamma=2.0):
    \"\"\"log p_t from the cross-entropy, p_t = exp(-CE).\"\"\"
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    weight = torch.where(target > 0.5, torch.full_like(ce, alpha), torch.full_like(ce, 1 - alpha))
    return (weight * (1 - p_t).pow(gamma) * ce).sum() / ce.numel()
''',
    "dice_loss": '''def dice_loss(logits, target, smooth=1.0):
    \"\"\"Sums over every axis but the first.\"\"\"
    axes = tuple(range(1, logits.ndim))
    p = logits.sigmoid()
    numerator = 2 * (p * target).sum(dim=axes) + smooth
    denominator = p.sum(dim=axes) + target.sum(dim=axes) + smooth
    return torch.mean(1 - numerator / denominator)
''',
    "sam_loss": '''def sam_loss(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    \"\"\"Loops over samples and masks, with this notebook's focal_loss and dice_loss.\"\"\"
    total = []
    for logits, predicted_ious, y in zip(mask_logits, iou_pred, target):
        y = y.to(logits.dtype)
        losses, errors = [], []
        for z, s in zip(logits, predicted_ious):
            losses.append(focal_weight * focal_loss(z, y) + dice_weight * dice_loss(z.unsqueeze(0), y.unsqueeze(0)))
            a, b = z > 0, y > 0.5
            union = int((a | b).sum())
            iou = 1.0 if union == 0 else int((a & b).sum()) / union
            errors.append((s - iou) ** 2)
        total.append(min(losses) + sum(errors) / len(errors))
    return sum(total) / len(total)
''',
    "stability_score": '''def stability_score(mask_logits, mask_threshold, threshold_offset):
    \"\"\"A loop over the masks of the flattened leading axes.\"\"\"
    flat = mask_logits.reshape(-1, mask_logits.shape[-2] * mask_logits.shape[-1])
    scores = []
    for row in flat:
        inside = int((row > mask_threshold + threshold_offset).sum())
        around = int((row > mask_threshold - threshold_offset).sum())
        scores.append(1.0 if around == 0 else inside / around)
    return torch.tensor(scores, dtype=mask_logits.dtype).reshape(mask_logits.shape[:-2])
''',
}

ANSWERS = {
    "00_tasks_and_metrics": (METRICS_A, METRICS_B),
    "01_thresholding": (THRESHOLDING_A, THRESHOLDING_B),
    "02_edges": (EDGES_A, EDGES_B),
    "03_regions": (REGIONS_A, REGIONS_B),
    "04_transpose_convolution": (TRANSPOSE_A, TRANSPOSE_B),
    "05_fcn": (FCN_A, FCN_B),
    "06_unet": (UNET_A, UNET_B),
    "07_segnet": (SEGNET_A, SEGNET_B),
    "08_deeplab": (DEEPLAB_A, DEEPLAB_B),
    "09_mask_rcnn": (MASK_RCNN_A, MASK_RCNN_B),
    "10_sam": (SAM_A, SAM_B),
    "11_coco_eda": (COCO_A, COCO_B),
}

CORRECT_ANSWERS: dict[str, list[Submission]] = {
    assignment: [Submission(f"correct_{letter}", f"every function written another way ({letter.upper()})",
                            replace=dict(code), full_marks=True)
                 for letter, code in zip("ab", pair)]
    for assignment, pair in ANSWERS.items()
}


def alternatives() -> dict[tuple[str, str], list[str]]:
    """``(assignment, function) -> names of the correct answers that rewrite it``."""
    found: dict[tuple[str, str], list[str]] = {}
    for assignment, submissions in CORRECT_ANSWERS.items():
        for submission in submissions:
            for function in submission.replace:
                found.setdefault((assignment, function), []).append(submission.name)
    return found
